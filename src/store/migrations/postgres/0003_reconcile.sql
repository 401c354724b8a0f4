-- The nightly reconciliation (docs/privacy.md says what is kept how long).

-- Why a notice was made, where its kind alone does not say: `age_limit` for
-- a `renewal_due` that cannot be renewed any further.
ALTER TABLE notices ADD COLUMN reason TEXT;

-- Expiry and renewal look for active signals by end date; retention for
-- ended ones by state. Without it each step reads every signal.
CREATE INDEX signals_state_end ON signals (state, end_date);

-- Retention purges delivered notices by when they were delivered.
CREATE INDEX notices_delivered ON notices (state, delivered_at);

-- Retention purges the audit trail oldest first, by time.
CREATE INDEX audit_at ON audit (at);
