#!/usr/bin/env bash
# A first sync against a server whose rate limiter is on (issue #11 targets): the 20,000-post
# generated workspace, server limits 20/s burst 5 and 10/s burst 100 (Mattermost's defaults
# when enabled), `--rate-limit 0`, --concurrency 1, 4 and 8 (examples/rate_limit_sync.rs).
# Targets per row: 0 failed items, 429s <= 2 % of requests, wall <= 1.15 x requests / limit.
# Takes about 10 minutes (the limit sets the pace, not the machine).
#
# usage: benches/rate_limit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin matterbak --example rate_limit_sync
echo "| server limit | C | requests | 429s | failed | wall | requests / limit | ratio |"
echo "|---|---|---|---|---|---|---|---|"
status=0
for limit in "20 5" "10 100"; do
    for c in 1 4 8; do
        # shellcheck disable=SC2086
        target/release/examples/rate_limit_sync target/release/matterbak \
            "posts=20000,attachments=1000" $limit "$c" || status=1
    done
done
exit $status
