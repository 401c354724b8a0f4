-- Match notices and the tasks visync makes itself, on their way back to the
-- case-management system. A notice names other professionals (never what
-- their involvement is about); once delivered, only its id and routing stay.

-- Who must be told of a registration (parents | parents_and_youth | youth),
-- decided by the child's age on the start date when the signal was planned.
ALTER TABLE signals ADD COLUMN audience TEXT;

CREATE TABLE notices (
    notice_id       TEXT    PRIMARY KEY,    -- the index's, or made here (notify_subject)
    kind            TEXT    NOT NULL,       -- match | family_match | match_ended | renewal_due | notify_subject
    signal_id       TEXT,
    source          TEXT,                   -- NULL: no signal of ours (kept, reported)
    case_ref        TEXT,
    professional_id TEXT,
    created_at      TEXT    NOT NULL,
    counterparts    TEXT,                   -- JSON; cleared once delivered
    due_date        TEXT,
    audience        TEXT,
    state           TEXT    NOT NULL,       -- pending | delivered | unroutable
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before      TEXT    NOT NULL,
    last_error      TEXT,
    delivered_at    TEXT,
    delivery        TEXT                    -- the file or endpoint it went to
);
CREATE INDEX notices_pending ON notices (state, source, not_before);
