#!/usr/bin/env bash
# Conformance check against the real reference: installs the Python matterbak 0.4.0 from PyPI
# into a throwaway virtualenv, runs it and our matterbak against the same mock server (the
# built-in sample workspace, on loopback), and compares data dirs and zips file for file.
# Two rounds: a first backup, and an update after the mock's standard mutations (the Python
# tool with --update-old-posts, since ours always catches edits).
#
# usage: tests/conformance/run.sh [path/to/matterbak]   (default: target/debug/matterbak)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
use_binary "${1:-}"
setup_work
install_python 0.4.0 "$work/venv"

start_mock
cd "$work"

run_python() {
    TZ=UTC "$work/venv/bin/matterbak" --credentials credentials.json --channels channels.json \
        --rate-limit 0 -d py/data -o py/matterbak_alice.zip "$@" > "py-$round.log" 2>&1 \
        || { cat "py-$round.log"; echo "conformance: the Python matterbak failed"; exit 1; }
}
run_ours() {
    TZ=UTC "$ours" backup --archive rs/archive --credentials credentials.json --channels channels.json \
        --rate-limit 0 -d rs/data -o rs/matterbak_alice.zip --quiet > "rs-$round.log" 2>&1 \
        || { cat "rs-$round.log"; echo "conformance: our matterbak failed"; exit 1; }
}

round=first
echo "== round 1: first backup"
mkdir -p py rs
run_python
run_ours
python3 "$here/compare.py" py/data rs/data py/matterbak_alice.zip rs/matterbak_alice.zip

round=update
echo "== round 2: update after mutations"
apply_update_scenario
run_python --update-old-posts
run_ours
python3 "$here/compare.py" py/data rs/data py/matterbak_alice.zip rs/matterbak_alice.zip
