-- API sources (api-sources.md): one row per source, the last poll and, for a
-- delta source, the bookmark the next poll starts from. The bookmark is
-- written in the same transaction as the plan of the records it covers.
CREATE TABLE api_polls (
    source           TEXT PRIMARY KEY,
    bookmark         TEXT,                -- delta: the greatest value of the last complete poll
    bookmark_at      TEXT,                -- when the bookmark last advanced
    last_poll_at     TEXT    NOT NULL,
    last_complete_at TEXT,
    complete         BIGINT  NOT NULL CHECK (complete IN (0, 1)),    -- the last poll read every page
    pages            BIGINT NOT NULL,
    records          BIGINT NOT NULL,
    error            TEXT                 -- why the last poll was incomplete (visync's words, no content)
);
