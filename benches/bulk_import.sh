#!/usr/bin/env bash
# Speed and peak memory of `matterbak export --format bulk-import` on a synthetic archive
# (default 200,000 posts in 10 channels, 1,000 attachments of 64 KiB): the whole JSONL is
# planned, validated line by line and streamed into the zip with the attachments.
# Needs /usr/bin/time (Debian package `time`).
#
# usage: benches/bulk_import.sh [POSTS ATTACHMENTS ATTACHMENT_BYTES]   (default: 200000 1000 65536)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin matterbak --example synth_archive
posts=${1:-200000} attachments=${2:-1000} bytes=${3:-65536}
work=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
target/release/examples/synth_archive "$work/archive" "$posts" "$attachments" "$bytes" 2>/dev/null
sync
/usr/bin/time -f "%e %M %U %S" -o "$work/time" target/release/matterbak export --format bulk-import \
    --archive "$work/archive" -o "$work/restore.zip" --existing-users none >/dev/null 2>"$work/err"
read -r secs kb usr sys < "$work/time"
mb=$(du -m "$work/restore.zip" | cut -f1)
awk -v s="$secs" -v kb="$kb" -v p="$posts" -v mb="$mb" -v u="$usr" -v y="$sys" 'BEGIN {
    printf "bulk-import: %d posts in %.2f s wall, %.2f s CPU (user %.2f + sys %.2f) (%.0f posts/s, target <= 10 s), peak RSS %d MB (target < 150 MB), zip %d MB\n", p, s, u + y, u, y, p / s, kb / 1024, mb
}'
head -1 "$work/err"
