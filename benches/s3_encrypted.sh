#!/usr/bin/env bash
# Encrypted archives in object storage (docs/performance.md "Encryption"), release build:
#  1. first sync of the generated 20,000-post workspace (L = 20 ms, C = 4) into a loopback S3
#     bucket, plain versus encrypted (`--encrypt`), RUNS times each (default 3), alternating
#     plain and encrypted in this one run, each into its own fresh prefix; the medians are
#     compared (target ≤ 1.10×). Each run's catalog must hold the 20,000 posts (perf_sync
#     checks); each encrypted prefix must be an encrypted repository (`config` marker, a key
#     object), hold as many blobs as the plain one, none named by a blob's hash, and every
#     object sampled must begin with the sealed-object header (`MBKE`);
#  2. seal/open throughput on one core and the Argon2id cost of one password check
#     (examples/crypto_speed.rs, pinned to CPU 0, round trip compared);
#  3. a BIG_MB attachment (default 1024) into an encrypted bucket: peak RSS of the sync, of
#     `verify --read-data` and of `export` (json layout) (target < 64 MB each); the bucket
#     must hold a sealed object of the attachment's sealed size, verify must report the
#     archive clean having read at least BIG_MB MiB, the exported file must equal the
#     attachment's bytes (SHA-1 of both compared).
# Uses moto's server mode (MATTERBAK_TEST_S3_SERVER or moto_server on PATH) and /usr/bin/time.
# Scratch data (and moto's spooled objects) go to a fresh directory in ${TMPDIR:-/tmp}.
#
# usage: benches/s3_encrypted.sh [BIG_MB [RUNS]]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
big_mb=${1:-1024}
runs=${2:-3}
need_disk $(( big_mb * 4 / 1024 + 2 ))
cargo build --release --quiet --bin matterbak --example perf_sync --example big_attachment \
    --example crypto_speed
bin=$PWD/target/release/matterbak
work=$(mktemp -d)
trap 'kill "${moto_pid:-}" 2>/dev/null; rm -rf "$work"' EXIT
# moto spools large objects to temporary files: keep them in the scratch directory.
TMPDIR=$work start_moto bench
unset MATTERBAK_ARCHIVE_PASSWORD BENCH_SYNC_ARGS
keys() { s3_keys bench "$1"; }
blob_names() { keys "$1" | awk -F/ 'length($NF) == 64 { print $NF }' | sort; }

# 1. Plain and encrypted first syncs, alternating, each into a fresh prefix.
first_sync() { target/release/examples/perf_sync "$bin" "posts=20000,attachments=1000" 20 4 | grep "first sync:"; }
secs() { sed -E 's/.*requests \([^)]*\), ([0-9.]+) s,.*/\1/' <<< "$1"; }
cpu() { sed -E 's/.*, CPU ([0-9.]+) s.*/\1/' <<< "$1"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
plain_secs=() enc_secs=() plain_cpu=() enc_cpu=()
for run in $(seq "$runs"); do
    plain_line=$(MATTERBAK_BLOBS=s3://bench/plain$run first_sync)
    enc_line=$(MATTERBAK_BLOBS=s3://bench/enc$run MATTERBAK_ARCHIVE_PASSWORD=bench-password \
        BENCH_SYNC_ARGS=--encrypt first_sync)
    echo "run $run, plain bucket:     $plain_line"
    echo "run $run, encrypted bucket: $enc_line"
    plain_secs+=("$(secs "$plain_line")") enc_secs+=("$(secs "$enc_line")")
    plain_cpu+=("$(cpu "$plain_line")") enc_cpu+=("$(cpu "$enc_line")")
    keys "plain$run" | grep -q "^plain$run/catalogs/" || die "the plain sync left no catalog snapshot"
    keys "plain$run" | grep -qx "plain$run/config" && die "the plain prefix is marked encrypted"
    keys "enc$run" | grep -qx "enc$run/config" || die "the encrypted sync left no encrypted repository (enc$run/config)"
    keys "enc$run" | grep -q "^enc$run/keys/" || die "the encrypted repository has no key object"
    # The plain prefix names blobs by their BLAKE3 hash; the encrypted one must not.
    plain_names=$(blob_names "plain$run")
    enc_names=$(blob_names "enc$run")
    [ "$(wc -l <<< "$plain_names")" -ge 1000 ] || die "the plain prefix holds fewer than 1,000 blobs"
    [ "$(wc -l <<< "$enc_names")" = "$(wc -l <<< "$plain_names")" ] ||
        die "plain and encrypted prefixes hold different numbers of blobs"
    [ -z "$(comm -12 <(echo "$plain_names") <(echo "$enc_names"))" ] ||
        die "an encrypted object is named by a blob's hash"
    # Every object but the plain marker and key objects is sealed: sample up to 50.
    for name in $(keys "enc$run" | grep -v -e "^enc$run/config\$" -e "^enc$run/keys/" | shuf -n 50); do
        [ "$(curl -sf -r 0-3 "$endpoint/bench/$name" -H "$s3_auth")" = MBKE ] ||
            die "object $name does not begin with the sealed-object header"
    done
done
p=$(median "${plain_secs[@]}") e=$(median "${enc_secs[@]}")
echo "plain runs: ${plain_secs[*]} s; encrypted runs: ${enc_secs[*]} s"
awk -v p="$p" -v e="$e" \
    'BEGIN { r = e / p; printf "first sync, encrypted / plain (medians): %.2f s / %.2f s = %.3fx (target <= 1.10x): %s\n", e, p, r, (r <= 1.10 ? "met" : "NOT met") }'
pc=$(median "${plain_cpu[@]}") ec=$(median "${enc_cpu[@]}")
echo "CPU seconds of the syncs, plain: ${plain_cpu[*]}; encrypted: ${enc_cpu[*]}"
awk -v p="$pc" -v e="$ec" \
    'BEGIN { printf "first sync CPU, encrypted / plain (medians): %.2f s / %.2f s = %.3fx (includes creating the repository: Argon2id calibration trials, the last one the wrap, on a thread of their own while the sync runs)\n", e, p, e / p }'

# 2. Seal/open throughput on one core, Argon2id cost.
taskset -c 0 target/release/examples/crypto_speed 512

# 3. One big attachment through an encrypted bucket: sync, verify --read-data, export.
big="$work/big"
BENCH_KEEP_DIR="$big" BENCH_SYNC_ARGS=--encrypt MATTERBAK_BLOBS=s3://bench/big \
    MATTERBAK_ARCHIVE_PASSWORD=bench-password \
    target/release/examples/big_attachment "$bin" "$big_mb" > "$work/big.out" || {
    # What moto answered besides 200 (its log has one line per request), and its tracebacks.
    grep -v '" 20[0-9] ' "$work/moto.log" | grep -v '" 404 ' | tail -n 30 >&2
    die "the ${big_mb} MB attachment's encrypted sync failed"
}
grep -v '^sha1 ' "$work/big.out" | sed 's/^/encrypted: /'
want=$(sed -n 's/^sha1 //p' "$work/big.out")
keys big | grep -qx 'big/config' || die "the big attachment's prefix is not encrypted"
# The sealed size of BIG_MB MiB: 27-byte header, one 16-byte tag per 1 MiB chunk.
sealed=$(( (big_mb << 20) + 27 + big_mb * 16 ))
curl -sf "$endpoint/bench?list-type=2&prefix=big/" -H "$s3_auth" | grep -q "<Size>$sealed</Size>" ||
    die "the bucket holds no object of the attachment's sealed size ($sealed bytes)"
export MATTERBAK_ARCHIVE_PASSWORD=bench-password
(cd "$big" && /usr/bin/time -f "%e %M" -o verify.time "$bin" verify --archive archive --read-data \
    > verify.out 2>&1) || { cat "$big/verify.out" >&2; die "verify --read-data failed"; }
grep -q "; 0 damaged" "$big/verify.out" || die "verify did not report a clean archive: $(cat "$big/verify.out")"
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
got=$(sha1sum "$exported" | cut -d' ' -f1)
[ -n "$want" ] && [ "$got" = "$want" ] || die "the exported big.bin differs from the attachment (SHA-1 $got, served $want)"
echo "encrypted: export (json layout, ${big_mb} MB attachment decrypted, SHA-1 equal): $esecs s, peak RSS $((ekb / 1024)) MB"
