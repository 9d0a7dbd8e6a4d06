#!/usr/bin/env bash
# Blobs in object storage against local disk (README Performance): the first sync of the
# 20,000-post generated workspace (L = 20 ms, C = 4) with blobs on a loopback S3 server versus
# in the archive's blobs/ (target ≤ 1.3×), and peak memory of a sync that uploads one big
# attachment (default 1024 MB; flat memory), and peak memory of `export` (json zip) of that
# workspace with its blobs in the bucket (target < 150 MB). Uses moto's server mode as the S3 server
# (MATTERBAK_TEST_S3_SERVER or moto_server on PATH; `pip install 'moto[server]'`) and
# /usr/bin/time.
#
# usage: benches/s3_blobs.sh [BIG_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
cargo build --release --quiet --bin matterbak --example perf_sync --example big_attachment
bin=$PWD/target/release/matterbak
work=$(mktemp -d)
trap 'kill "${moto_pid:-}" 2>/dev/null; rm -rf "$work"' EXIT
# moto spools large objects to temporary files: keep them in the scratch directory.
TMPDIR=$work start_moto bench

first_sync() { target/release/examples/perf_sync "$bin" "posts=20000,attachments=1000" 20 4 | grep "first sync:"; }
local_line=$(env -u MATTERBAK_BLOBS bash -c "$(declare -f first_sync); bin=$bin; first_sync")
s3_line=$(MATTERBAK_BLOBS=s3://bench/sync first_sync)
secs() { sed -E 's/.*requests \([^)]*\), ([0-9.]+) s,.*/\1/' <<< "$1"; }
echo "local disk: $local_line"
echo "S3 (moto):  $s3_line"
awk -v l="$(secs "$local_line")" -v s="$(secs "$s3_line")" \
    'BEGIN { printf "first sync, blobs in the bucket / on disk: %.2f s / %.2f s = %.2fx\n", s, l, s / l }'

MATTERBAK_BLOBS=s3://bench/big target/release/examples/big_attachment "$bin" "${1:-1024}"

# Export from the bucket: sync the same workspace into an archive whose blobs are in the
# bucket, then export it (json folder layout and zip) under /usr/bin/time.
mkfifo "$work/hold"
"$bin" mock-server --addr 127.0.0.1:0 --generate "posts=20000,attachments=1000" \
    > "$work/url" < "$work/hold" &
exec 3> "$work/hold"
for _ in $(seq 600); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -n1 "$work/url")
[ -n "$url" ] || die "the mock server did not start"
printf '{"user": "alice", "password": "alice-password", "url": "%s/api"}' "$url" > "$work/credentials.json"
chmod 600 "$work/credentials.json"
echo '{"teams": {"team-0": {}, "team-1": {}}}' > "$work/channels.json"
(cd "$work" && "$bin" sync --archive archive --blobs s3://bench/export --rate-limit 0 -q > /dev/null)
check_posts "$work/archive" 20000
(cd "$work" && /usr/bin/time -f "%e %M" -o export.time "$bin" export --archive archive \
    -d data -o export.zip > /dev/null 2>&1)
read -r secs kb < "$work/export.time"
files=$(find "$work/data" -type f | wc -l)
[ "$(post_files "$work/data")" = 20000 ] ||
    die "the export from the bucket does not hold 20,000 post files"
# In files/: <file id>.json is the file info, <file id>__<name> the attachment's bytes.
[ "$(find "$work/data" -path '*/files/*' -name '*__*' | wc -l)" = 1000 ] ||
    die "the export from the bucket does not hold 1,000 attachments"
echo "export from the bucket (json layout + zip, $files files): $secs s, peak RSS $((kb / 1024)) MB"
exec 3>&-
