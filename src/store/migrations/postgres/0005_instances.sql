-- Several instances on one database (issue 13). On SQLite one process
-- writes (the state lock), so only `meta` is used there; the other tables
-- exist in both dialects so that the schemas stay one.

-- Facts about the store itself: `key_fingerprint`, the HMAC of a fixed
-- label under the subject key, written at the first start; a key that
-- gives another is refused (every child would look new to it).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- An outbox row being sent by one instance until `claimed_until`; after
-- it, another may take the row (the first died holding it).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;

-- A file being read by one instance, by its content, before the ledger
-- records its outcome; the claim expires with the lease.
CREATE TABLE file_claims (
    source        TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    claimed_by    TEXT NOT NULL,
    claimed_until TEXT NOT NULL,
    PRIMARY KEY (source, sha256)
);

-- A scheduled job (notices, reconcile, an API source's poll) run by one
-- instance at a time: the holder renews its lease every pass.
CREATE TABLE leases (
    job    TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  TEXT NOT NULL
);

-- The instances that run on this database, for `visync status`.
CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    host       TEXT    NOT NULL,
    pid        BIGINT  NOT NULL,
    started_at TEXT    NOT NULL,
    seen_at    TEXT    NOT NULL
);
