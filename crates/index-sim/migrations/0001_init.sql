-- The reference index's own store. Dates are TEXT 'YYYY-MM-DD', so that they
-- compare as dates; instants are RFC 3339 UTC.

-- Live signals: active (registered, not ended) or archived (ended, kept for
-- the archive period). Purged signals leave this table for `tombstones`.
CREATE TABLE signals (
    -- Internal, never reused: orders pages and joins.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT NOT NULL,
    -- The client's idempotency key; unique per organisation.
    signal_id TEXT NOT NULL,
    bsn TEXT NOT NULL,
    family_name TEXT NOT NULL,
    name_prefix TEXT,
    initials TEXT,
    given_names TEXT,
    birth_date TEXT NOT NULL,
    gender TEXT NOT NULL,
    professional_id TEXT NOT NULL,
    professional_name TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'archived')),
    -- 1 while the signal is in force and takes part in matching (its links
    -- exist and its partners were told); 0 before its start date and after it
    -- ended.
    joined INTEGER NOT NULL DEFAULT 0,
    -- The subject's age-limit birthday: everything with this BSN goes then.
    subject_purge_on TEXT NOT NULL,
    archived_on TEXT,
    -- archived_on plus the archive period.
    purge_on TEXT,
    UNIQUE (org, signal_id)
);
-- The invariant behind `duplicate_signals = 0`, enforced by the database
-- itself: one active signal per organisation, professional and subject.
CREATE UNIQUE INDEX signals_one_active ON signals (org, professional_id, bsn)
    WHERE state = 'active';
CREATE INDEX signals_bsn ON signals (bsn);
CREATE INDEX signals_org ON signals (org, id);
-- What the lifecycle sweep looks for on every call.
CREATE INDEX signals_subject_purge ON signals (subject_purge_on);
CREATE INDEX signals_state_end ON signals (state, end_date);
CREATE INDEX signals_state_purge ON signals (state, purge_on);
CREATE INDEX signals_waiting ON signals (start_date) WHERE joined = 0 AND state = 'active';

-- What is left of a purged signal: its id only, so that a retried withdrawal
-- still succeeds and a re-sent signal is refused as `withdrawn` instead of
-- coming back to life.
CREATE TABLE tombstones (
    org TEXT NOT NULL,
    signal_id TEXT NOT NULL,
    purged_on TEXT NOT NULL,
    PRIMARY KEY (org, signal_id)
);

-- Pairs of joined signals that match (same BSN) or family-match (siblings);
-- a < b.
CREATE TABLE links (
    a INTEGER NOT NULL REFERENCES signals (id) ON DELETE CASCADE,
    b INTEGER NOT NULL REFERENCES signals (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('match', 'family_match')),
    PRIMARY KEY (a, b)
);
CREATE INDEX links_b ON links (b);

-- Notices per organisation; seq is the cursor and is never reused.
CREATE TABLE notices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_id TEXT NOT NULL UNIQUE,
    org TEXT NOT NULL,
    signal_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- JSON array, a snapshot of the counterparts when the notice was made.
    counterparts TEXT NOT NULL
);
CREATE INDEX notices_org ON notices (org, seq);
CREATE INDEX notices_signal ON notices (org, signal_id);

-- Family ties from `--families`, standing in for the population register;
-- replaced at every start.
CREATE TABLE families (
    bsn TEXT NOT NULL,
    family_id TEXT NOT NULL,
    PRIMARY KEY (bsn, family_id)
);
CREATE INDEX families_family ON families (family_id);

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('register_calls', 0);
