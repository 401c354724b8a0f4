-- The national tier (docs/index-sim.md, "The national tier").

-- On a national index, `org` is the region that forwarded the signal and
-- `origin` the organisation inside it that made it. '' on a regional index,
-- where `org` is the organisation itself. NOT NULL so that the unique index
-- below still compares equal values on a regional index (NULLs never clash).
ALTER TABLE signals ADD COLUMN origin TEXT NOT NULL DEFAULT '';
-- On a national index: the region's change number (its forward queue's seq)
-- of the state applied last, so that an older state arriving late never
-- overwrites a newer one. NULL on a regional index.
ALTER TABLE signals ADD COLUMN tier_seq INTEGER;

-- One active signal per organisation, professional and subject; on a
-- national index the organisation is (region, origin).
DROP INDEX signals_one_active;
CREATE UNIQUE INDEX signals_one_active ON signals (org, origin, professional_id, bsn)
    WHERE state = 'active';

-- A regional index's link to its national index: one row.
CREATE TABLE tier_link (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- 1 while started with --upstream: the triggers below queue changes.
    forwarding INTEGER NOT NULL DEFAULT 0,
    -- The national index forwarded to last: another one is sent everything
    -- again, and its notices are read from the start.
    upstream TEXT,
    -- The national index's notice cursor for this region; advanced in the
    -- transaction that stores the notices it covers.
    notice_cursor TEXT NOT NULL DEFAULT '0'
);
INSERT INTO tier_link (id) VALUES (1);

-- Signals whose state the national index has yet to learn, one row per
-- signal: a newer change replaces the row and takes a new seq, so the queue
-- never grows past the number of signals and always sends the latest state.
-- A row leaves only once the national index has answered for that seq.
CREATE TABLE forward_queue (
    -- Never reused (AUTOINCREMENT): the order of changes, and the version
    -- the national index compares.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT NOT NULL,
    signal_id TEXT NOT NULL,
    UNIQUE (org, signal_id)
);

-- Triggers rather than calls in the store code: every change to a signal,
-- whichever path makes it (a batch, a withdrawal, a renewal, the lifecycle
-- sweep), is queued in the transaction that makes it, and a path added later
-- cannot forget to. Only the columns a region forwards count: joining and
-- leaving matches (`joined`) and recomputed purge dates are the national
-- index's own business.
CREATE TRIGGER forward_insert AFTER INSERT ON signals
WHEN (SELECT forwarding FROM tier_link WHERE id = 1) = 1
BEGIN
    INSERT OR REPLACE INTO forward_queue (org, signal_id) VALUES (NEW.org, NEW.signal_id);
END;

CREATE TRIGGER forward_update AFTER UPDATE OF bsn, family_name, name_prefix, initials,
    given_names, birth_date, gender, professional_id, professional_name, phone, email,
    start_date, end_date, state ON signals
WHEN (SELECT forwarding FROM tier_link WHERE id = 1) = 1
BEGIN
    INSERT OR REPLACE INTO forward_queue (org, signal_id) VALUES (NEW.org, NEW.signal_id);
END;

CREATE TRIGGER forward_delete AFTER DELETE ON signals
WHEN (SELECT forwarding FROM tier_link WHERE id = 1) = 1
BEGIN
    INSERT OR REPLACE INTO forward_queue (org, signal_id) VALUES (OLD.org, OLD.signal_id);
END;
