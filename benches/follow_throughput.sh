#!/usr/bin/env bash
# Live capture (`sync --follow`): posted events per second into the catalog. The mock makes
# POSTS posts shaped like a real workspace's (src/mock/generate/stream.rs, posts only: threads,
# Markdown, code, mentions, attachments, messages up to 16,383 characters) as fast as it can;
# the figure is POSTS over the time from the first post sent to the last one's row showing in
# the catalog. Also prints how fast the mock sent them (if that is near the figure, the mock
# was the limit) and the follower's CPU per post. Fails unless every post is in the catalog.
#
# usage: benches/follow_throughput.sh [POSTS]   (default: 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
posts=${1:-100000}
need_disk $(( posts / 200000 + 1 ))
follow_bench throughput "$posts"
