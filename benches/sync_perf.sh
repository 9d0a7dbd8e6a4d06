#!/usr/bin/env bash
# Requests, wall time against the latency floor, and peak memory of `matterbak sync` against
# the mock serving a generated workspace (examples/perf_sync.rs). Needs /usr/bin/time.
#
# usage: benches/sync_perf.sh [latency|memory]   (default: both)
#   latency: 20,000 posts / 1,000 attachments, L = 20 ms, --concurrency 1, 4, 8 (median of 3)
#   memory:  L = 0, 100,000 posts / 4,000 attachments and 200,000 posts / 8,000 attachments
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
cargo build --release --quiet --bin matterbak --example perf_sync
run() { target/release/examples/perf_sync target/release/matterbak "$@"; }
what=${1:-both}
if [ "$what" != memory ]; then
    for c in 1 4 8; do run "posts=20000,attachments=1000" 20 "$c" 3; done
fi
if [ "$what" != latency ]; then
    run "posts=100000,attachments=4000,channels=50" 0 4
    run "posts=200000,attachments=8000,channels=100" 0 4
fi
