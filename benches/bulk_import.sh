#!/usr/bin/env bash
# Speed and peak memory of `matterbak export --format bulk-import` on a generated archive
# shaped like a real workspace (examples/synth_archive.rs; default 200,000 posts in 10
# channels, 1,000 attachments of 64 KiB): the whole JSONL is planned, validated line by line
# and streamed into the zip with the attachments. Three runs, median reported (each run must
# succeed); the posts and replies in the zip's import.jsonl are counted and must equal the
# catalog's. Needs /usr/bin/time (Debian package `time`) and python3.
#
# usage: benches/bulk_import.sh [POSTS ATTACHMENTS ATTACHMENT_BYTES]   (default: 200000 1000 65536)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
cargo build --release --quiet --bin matterbak --example synth_archive
posts=${1:-200000} attachments=${2:-1000} bytes=${3:-65536}
bin=target/release/matterbak
work=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
target/release/examples/synth_archive "$work/archive" "$posts" "$attachments" "$bytes" 2>"$work/synth.log"
cat "$work/synth.log"
check_posts "$work/archive" "$posts"
sync
read -r secs kb < <(median3 bash -c "rm -f '$work'/restore.*; exec $bin export --format bulk-import --archive '$work/archive' -o '$work/restore.zip' --existing-users none")
written=$(python3 - "$work/restore.zip" <<'PY'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
n = 0
with z.open("import.jsonl") as f:
    for line in f:
        o = json.loads(line)
        if o["type"] in ("post", "direct_post"):
            p = o[o["type"]]
            n += 1 + len(p.get("replies") or [])
print(n)
PY
)
[ "$written" = "$posts" ] || die "the zip holds $written posts and replies, the archive $posts"
mb=$(du -m "$work/restore.zip" | cut -f1)
awk -v s="$secs" -v kb="$kb" -v p="$posts" -v mb="$mb" 'BEGIN {
    printf "bulk-import: %d posts (counted in the zip) in %.2f s wall, median of 3 (%.0f posts/s, target <= 10 s); peak RSS %d MB (target < 150 MB); zip %d MB\n", p, s, p / s, kb / 1024, mb
}'
