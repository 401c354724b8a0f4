#!/bin/sh
# A benchmark of `visync reconcile` (issue 12), not a timed test: N signals
# in the state store and at the reference index, written straight into both
# SQLite databases (registering a million signals through the index would
# measure registration, not reconciliation), then one dry run and one real
# run, each under /usr/bin/time for wall time and peak memory.
#
#   cargo build --release && sh benches/reconcile.sh [N]     (default 1000000)
#
# The store's signals are active and end in 2028; the index lists them all,
# one in a thousand with another end date (end_date_taken) and one in a
# thousand missing, plus a thousand signals the store does not know
# (unknown), so every join of the comparison has work.
set -eu
N=${1:-1000000}
BIN=$(realpath "${VISYNC:-target/release/visync}")
DIR=$(mktemp -d)
trap 'kill "$SIM" 2>/dev/null || true; rm -rf "$DIR"' EXIT
cd "$DIR"
mkdir in
echo bench-token > token
cat > visync.toml <<TOML
[organisation]
code = "01234567"
name = "Bench"
[state]
url = "sqlite://state/visync.db"
[index]
url = "http://127.0.0.1:39311"
token_file = "token"
[[sources]]
mapping = "$OLDPWD/tests/fixtures/cases/csv-codes/mapping.toml"
watch = "in"
[http]
listen = ""
TOML
# The index, once it listens (it says so on its first line).
sim() {
    : > sim.out
    "$BIN" --today 2026-11-28 index-sim --listen 127.0.0.1:39311 --db idx.db \
        --org 01234567=bench-token --clock 2026-11-28 >sim.out 2>/dev/null &
    SIM=$!
    until grep -q listening sim.out; do sleep 0.1; done
}
# Both databases made by their own programs (migrations), then filled.
sim
"$BIN" --today 2026-11-28 run --once -c visync.toml >/dev/null 2>&1 || true
kill "$SIM"; wait "$SIM" 2>/dev/null || true
sqlite3 state/visync.db <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref, start_date,
                     end_date, last_day, content_hash, state, created_at, updated_at)
SELECT printf('sig-%09d', i), 'codes', randomblob(16), 'E' || (i % 500), 'D' || i, '2026-11-01',
       '2028-11-01', '2035-03-03', i, 'active', '2026-11-01T00:00:00.000Z', '2026-11-01T00:00:00.000Z'
FROM n;
SQL
sqlite3 idx.db <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N + 1000)
INSERT INTO signals (org, signal_id, bsn, family_name, birth_date, gender, professional_id,
                     professional_name, start_date, end_date, state, joined, subject_purge_on)
SELECT '01234567', printf('sig-%09d', i), printf('%09d', i), 'X', '2012-03-04', 'unknown',
       'E' || (i % 500), 'P', '2026-11-01',
       CASE WHEN i % 1000 = 7 THEN '2028-11-20' ELSE '2028-11-01' END, 'active', 0, '2035-03-04'
FROM n WHERE i % 1000 <> 3;
SQL
sim
for mode in "--dry-run" ""; do
    echo "reconcile $mode over $N signals:"
    /usr/bin/time -f "  %e s wall, %M KiB peak resident" \
        "$BIN" --today 2026-11-28 reconcile -c visync.toml $mode --json 2>&1 >report.json \
        | grep -E "wall|NOT"
    sed -n 's/^  "\(compared\|missing\|unknown\|end_date_taken\)": \([0-9]*\).*/  \1 \2/p' report.json
done
