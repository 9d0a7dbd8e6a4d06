#!/usr/bin/env bash
# Live capture (`sync --follow`): what following an idle workspace costs. After the first
# catch-up, nothing changes for SECONDS while the follower runs with --poll-interval POLL; the
# mock's request log says which REST requests came outside a poll (from the follower's
# "polling" line to its next "caught up" line; the target is none) and what one poll costs,
# by route. Fails unless the follower polled about SECONDS / POLL times over one WebSocket
# connection.
#
# usage: benches/follow_idle.sh [SECONDS] [POLL]   (default: 120 30)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
follow_bench idle "${1:-120}" "${2:-30}"
