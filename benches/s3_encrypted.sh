#!/usr/bin/env bash
# Encrypted archives in object storage (docs/performance.md "Encryption"), release build:
#  1. first sync of the generated 20,000-post workspace (L = 20 ms, C = 4) into a loopback S3
#     bucket, plain versus encrypted (`--encrypt`), in this one run (target ≤ 1.10×); the
#     encrypted prefix is checked to be an encrypted repository (its `config` marker) and to
#     hold no object named by a blob's hash;
#  2. seal/open throughput on one core and the Argon2id cost of one password check
#     (examples/crypto_speed.rs, pinned to CPU 0);
#  3. a BIG_MB attachment (default 1024) into an encrypted bucket: peak RSS of the sync, of
#     `verify --read-data` and of `export` (json layout) (target < 64 MB each); verify must
#     report the archive clean having read at least BIG_MB MiB, the exported file must have
#     the attachment's size.
# Uses moto's server mode (MATTERBAK_TEST_S3_SERVER or moto_server on PATH) and /usr/bin/time.
#
# usage: benches/s3_encrypted.sh [BIG_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
moto=${MATTERBAK_TEST_S3_SERVER:-$(command -v moto_server || true)}
[ -n "$moto" ] && [ -x "$moto" ] ||
    die "needs an S3 server: moto (pip install 'moto[server]'; then put moto_server on PATH or set MATTERBAK_TEST_S3_SERVER to its path)"
big_mb=${1:-1024}
need_disk $(( big_mb * 4 / 1024 + 2 ))
cargo build --release --quiet --bin matterbak --example perf_sync --example big_attachment \
    --example crypto_speed
bin=$PWD/target/release/matterbak
work=$(mktemp -d)
"$moto" -H 127.0.0.1 -p 0 2> "$work/moto.log" > /dev/null &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 600); do
    grep -q "Running on" "$work/moto.log" && break
    kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log" >&2; die "moto ($moto) exited before it was serving"; }
    sleep 0.2
done
grep -q "Running on" "$work/moto.log" || die "moto ($moto) did not start serving within 2 minutes"
endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/moto.log" | head -1)
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIABENCHMARK00001 AWS_SECRET_ACCESS_KEY=bench-secret-key
auth="authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
curl -sf -X PUT "$endpoint/bench" -o /dev/null -H "$auth"
keys() { curl -sf "$endpoint/bench?list-type=2&prefix=$1/" -H "$auth" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'; }
unset MATTERBAK_ARCHIVE_PASSWORD BENCH_SYNC_ARGS

# 1. Plain and encrypted first sync, one after the other in this run.
first_sync() { target/release/examples/perf_sync "$bin" "posts=20000,attachments=1000" 20 4 | grep "first sync:"; }
plain_line=$(MATTERBAK_BLOBS=s3://bench/plain first_sync)
enc_line=$(MATTERBAK_BLOBS=s3://bench/enc MATTERBAK_ARCHIVE_PASSWORD=bench-password \
    BENCH_SYNC_ARGS=--encrypt first_sync)
keys plain | grep -q '^plain/catalogs/' || die "the plain sync left no catalog snapshot"
keys plain | grep -qx 'plain/config' && die "the plain prefix is marked encrypted"
keys enc | grep -qx 'enc/config' || die "the encrypted sync left no encrypted repository (enc/config)"
keys enc | grep -q '^enc/keys/' || die "the encrypted repository has no key object"
# The plain prefix names blobs by their BLAKE3 hash; the encrypted one must not.
plain_names=$(keys plain | awk -F/ 'length($NF) == 64 { print $NF }' | sort)
enc_names=$(keys enc | awk -F/ 'length($NF) == 64 { print $NF }' | sort)
[ "$(wc -l <<< "$plain_names")" -ge 1000 ] || die "the plain prefix holds fewer than 1,000 blobs"
[ "$(wc -l <<< "$enc_names")" = "$(wc -l <<< "$plain_names")" ] ||
    die "plain and encrypted prefixes hold different numbers of blobs"
[ -z "$(comm -12 <(echo "$plain_names") <(echo "$enc_names"))" ] ||
    die "an encrypted object is named by a blob's hash"
secs() { sed -E 's/.*requests \([^)]*\), ([0-9.]+) s,.*/\1/' <<< "$1"; }
echo "plain bucket:     $plain_line"
echo "encrypted bucket: $enc_line"
awk -v p="$(secs "$plain_line")" -v e="$(secs "$enc_line")" \
    'BEGIN { r = e / p; printf "first sync, encrypted / plain: %.2f s / %.2f s = %.3fx (target <= 1.10x): %s\n", e, p, r, (r <= 1.10 ? "met" : "NOT met") }'

# 2. Seal/open throughput on one core, Argon2id cost.
taskset -c 0 target/release/examples/crypto_speed 512

# 3. One big attachment through an encrypted bucket: sync, verify --read-data, export.
big="$work/big"
BENCH_KEEP_DIR="$big" BENCH_SYNC_ARGS=--encrypt MATTERBAK_BLOBS=s3://bench/big \
    MATTERBAK_ARCHIVE_PASSWORD=bench-password \
    target/release/examples/big_attachment "$bin" "$big_mb" | sed 's/^/encrypted: /'
keys big | grep -qx 'big/config' || die "the big attachment's prefix is not encrypted"
export MATTERBAK_ARCHIVE_PASSWORD=bench-password
(cd "$big" && /usr/bin/time -f "%e %M" -o verify.time "$bin" verify --archive archive --read-data \
    > verify.out 2>&1) || { cat "$big/verify.out" >&2; die "verify --read-data failed"; }
grep -q "0 damaged" "$big/verify.out" || die "verify did not report a clean archive: $(cat "$big/verify.out")"
read -r vsecs vkb < "$big/verify.time"
read_bytes=$(grep -o 're-hashed ([0-9]* bytes)' "$big/verify.out" | grep -o '[0-9]*')
[ "$read_bytes" -ge $(( big_mb << 20 )) ] || die "verify read $read_bytes bytes, less than the attachment"
echo "encrypted: verify --read-data ($read_bytes bytes authenticated and hashed): $vsecs s, peak RSS $((vkb / 1024)) MB"
(cd "$big" && /usr/bin/time -f "%e %M" -o export.time "$bin" export --archive archive -d data --no-zip \
    > export.out 2>&1) || { cat "$big/export.out" >&2; die "export failed"; }
read -r esecs ekb < "$big/export.time"
exported=$(find "$big/data" -name '*__big.bin')
[ -n "$exported" ] || die "the export holds no big.bin"
[ "$(stat -c %s "$exported")" = $(( big_mb << 20 )) ] || die "the exported big.bin has the wrong size"
echo "encrypted: export (json layout, ${big_mb} MB attachment decrypted): $esecs s, peak RSS $((ekb / 1024)) MB"
