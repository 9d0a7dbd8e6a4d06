#!/usr/bin/env bash
# Wall time and request count of a first backup (sync + export + zip) by the Python matterbak
# 0.4.0 and by ours, against the same mock server serving a generated workspace shaped like a
# real one (20,000 posts, 1,000 attachments by default) with 20 ms of latency per request;
# rate limits off on both. Both backups must hold every post (post files counted).
# The Python tool has no concurrency option (it is sequential); ours runs at each C given.
# Installs matterbak 0.4.0 from PyPI into a throwaway virtualenv (needs network).
#
# usage: benches/compare_python.sh [SIZES [LATENCY_MS [C ...]]]
#        (default: posts=20000,attachments=1000  20  4 8)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
sizes=${1:-posts=20000,attachments=1000}
latency=${2:-20}
shift $(( $# > 2 ? 2 : $# )) || true
concurrencies=${*:-4 8}
cargo build --release --quiet --bin matterbak
ours=$PWD/target/release/matterbak
bin=$ours
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
    apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "matterbak==0.4.0"

mkfifo "$work/hold"
"$ours" mock-server --addr 127.0.0.1:0 --generate "$sizes" --latency-ms "$latency" \
    > "$work/url" < "$work/hold" &
server_pid=$!
exec 3> "$work/hold"
for _ in $(seq 600); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -n1 "$work/url")
[ -n "$url" ] || { echo "mock server did not start"; exit 2; }
cd "$work"
printf '{"user": "alice", "password": "alice-password", "url": "%s/api"}' "$url" > credentials.json
chmod 600 credentials.json
python3 - "$sizes" > channels.json <<'PY'
import json, sys
teams = dict(kv.split("=") for kv in sys.argv[1].split(",") if kv).get("teams", "2")
print(json.dumps({"teams": {f"team-{t}": {} for t in range(int(teams))}}))
PY
requests() { python3 -c "import json,urllib.request as u; print(json.load(u.urlopen('$url/__mock/requests'))['total'])"; }
reset() { python3 -c "import urllib.request as u; u.urlopen(u.Request('$url/__mock/requests/reset', method='POST'))"; }
timed() { /usr/bin/time -f %e -o t "$@" > log 2>&1 || { cat log >&2; die "$* failed"; }; cat t; }

reset
py_secs=$(TZ=UTC timed "$work/venv/bin/matterbak" --credentials credentials.json \
    --channels channels.json --rate-limit 0 -d py/data -o py/out.zip)
py_requests=$(requests)
expected=$(sed -nE 's/.*posts=([0-9]+).*/\1/p' <<<"$sizes")
expected=${expected:-20000}
[ "$(post_files py/data)" = "$expected" ] || die "the Python backup holds $(post_files py/data) posts of $expected"
printf "%-22s %10s %10s %14s %14s\n" tool seconds requests "time ratio" "request ratio"
printf "%-22s %10s %10s\n" "python matterbak 0.4.0" "$py_secs" "$py_requests"
# Ours three times per C, each into its own directories (deleting 22,000 files between runs
# makes the next run pay for the file system's clean-up), median reported.
for c in $concurrencies; do
    times=()
    for i in 1 2 3; do
        reset
        mkdir -p "rs-$c-$i"
        times+=("$(TZ=UTC timed "$ours" backup --archive "rs-$c-$i/archive" --credentials credentials.json \
            --channels channels.json --rate-limit 0 --concurrency "$c" -d "rs-$c-$i/data" \
            -o "rs-$c-$i/out.zip" --quiet)")
        n=$(requests)
        check_posts "rs-$c-$i/archive" "$expected"
        [ "$(post_files "rs-$c-$i/data")" = "$expected" ] || die "our backup (C = $c) holds $(post_files "rs-$c-$i/data") post files of $expected"
    done
    secs=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    awk -v s="$secs" -v n="$n" -v ps="$py_secs" -v pn="$py_requests" -v c="$c" -v all="${times[*]}" 'BEGIN {
        printf "%-22s %10s %10s %13.1fx %13.2fx   (runs: %s)\n", "ours --concurrency " c, s, n, ps / s, pn / n, all }'
done
