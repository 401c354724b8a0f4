-- visync state. What is kept, and why, is written beside each table; nothing
-- here holds a BSN or a name in clear except an outbox payload that has not
-- been confirmed by the index yet.

-- Every file taken from a drop folder, by content hash: a file is never taken
-- twice, and the same content under a new name is recognised.
CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    taken_at    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,           -- processed | rejected
    records     INTEGER NOT NULL DEFAULT 0,
    accepted    INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    UNIQUE (source, sha256)
);

-- The signals this installation owns. A child is known by a keyed hash only.
CREATE TABLE signals (
    signal_id       TEXT    PRIMARY KEY,    -- made here; the index's idempotency key
    source          TEXT    NOT NULL,
    subject_key     BLOB    NOT NULL,       -- HMAC of the BSN (see domain/subject_key.rs)
    professional_id TEXT    NOT NULL,
    case_ref        TEXT    NOT NULL,       -- to put notices next to the right case
    start_date      TEXT    NOT NULL,
    end_date        TEXT    NOT NULL,
    last_day        TEXT    NOT NULL,       -- the day before the age limit: all goes then
    content_hash    INTEGER NOT NULL,       -- see domain::ContentHash
    renewed         INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL,       -- pending | active | withdrawing | withdrawn | expired | rejected
    withdraw_reason TEXT,
    error           TEXT,                   -- the index's item error, when it refused the signal
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
-- At most one live signal per involvement: the planner relies on it.
CREATE UNIQUE INDEX signals_live ON signals (source, subject_key, professional_id)
    WHERE state IN ('pending', 'active');
CREATE INDEX signals_subject ON signals (subject_key);

-- Actions waiting for the index, written in the same transaction as the
-- state change that caused them.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    signal_id   TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    action      TEXT    NOT NULL,           -- register | update | withdraw | renew
    payload     TEXT,                       -- the signal as sent (register, update); deleted when confirmed
    reason      TEXT,                       -- withdraw
    end_date    TEXT,                       -- renew
    state       TEXT    NOT NULL,           -- ready | held | quarantined
    attempts    INTEGER NOT NULL DEFAULT 0,
    not_before  TEXT    NOT NULL,           -- RFC 3339 UTC: backoff
    last_error  TEXT,
    created_at  TEXT    NOT NULL
);
CREATE INDEX outbox_ready ON outbox (state, not_before, id);
CREATE INDEX outbox_signal ON outbox (signal_id, id);

-- Snapshots whose withdrawals wait for `visync release`.
CREATE TABLE holds (
    source      TEXT    PRIMARY KEY,
    file        TEXT    NOT NULL,
    withdrawals INTEGER NOT NULL,
    active      INTEGER NOT NULL,
    held_at     TEXT    NOT NULL
);

-- Children whose parents or who themselves objected: never registered again.
CREATE TABLE objections (
    subject_key BLOB    PRIMARY KEY,
    at          TEXT    NOT NULL
);

-- Positions in feeds (notices) and other small named values.
CREATE TABLE cursors (
    name        TEXT    PRIMARY KEY,
    value       TEXT    NOT NULL
);

-- Every action, chained by hash so that a changed or removed event shows.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    signal_id   TEXT,
    source      TEXT,
    detail      TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
