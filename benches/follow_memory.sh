#!/usr/bin/env bash
# Live capture (`sync --follow`): memory over a long run. The mock makes EVENTS changes shaped
# like a real workspace (src/mock/generate/stream.rs: posts, reactions added and removed,
# edits, deletions) as fast as the follower commits them (at most 10,000 ahead of the
# catalog, so the figure is not the size of a backlog); the follower's peak RSS (VmHWM) and
# RSS are read after 10,000 events and after EVENTS, in the same run. Fails unless the catalog
# holds every change.
#
# usage: benches/follow_memory.sh [EVENTS]   (default: 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
events=${1:-1000000}
need_disk $(( events / 300000 + 1 ))
follow_bench memory "$events"
