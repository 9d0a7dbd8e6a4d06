#!/usr/bin/env bash
# Live capture (`sync --follow`): event → committed row at a sustained rate. The mock serves a
# generated workspace (20,000 posts, 20 channels, 50 users) and makes a stream of changes
# shaped like a real workspace (posts with Markdown, code, mentions, hashtags, threads,
# attachments, messages up to 16,383 characters; reactions added and removed, edits,
# deletions: src/mock/generate/stream.rs) at RATE events/s for SECONDS; a reader polls the live
# catalog every 2 ms and notes when each post's row shows. Prints the percentiles of posted
# events (exact) and of all events (bounded by the next post's commit: the follower commits in
# order). Fails unless the mock sustained the rate and the catalog holds every change.
#
# usage: benches/follow_latency.sh [RATE] [SECONDS]   (default: 1000 60)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_disk 1
follow_bench latency "${1:-1000}" "${2:-60}"
