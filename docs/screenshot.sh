#!/bin/sh
# Renders the HTML dry-run report of the shipped samples in headless Chromium
# and saves docs/check-report.png (the picture in docs/mapping.md).
#   apt-get install -y chromium    # Debian's package; nothing else is fetched
#   sh docs/screenshot.sh
# The samples are copied first: `check` moves nothing, but a run would.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/samples"
cp -r samples/caseflow samples/jeugdnet samples/visync.toml "$work/samples/"
cp -r mappings "$work/"
rm -rf "$work/samples/caseflow/processed" "$work/samples/jeugdnet/processed"
./target/debug/visync --today 2026-11-28 check -c "$work/samples/visync.toml" \
    --html "$work/report.html" > /dev/null || true   # exit 1: the samples have rejected records
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome)
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1100,1700 --screenshot="$PWD/docs/check-report.png" \
    "file://$work/report.html" 2> /dev/null
echo "wrote docs/check-report.png"
