#!/usr/bin/env bash
# The website (`export --format html`): build speed, peak memory, largest page and no-op
# rebuild of a synthetic 200,000-post archive; then search on a generated 1,000,000-post site
# in headless Chromium opened from file:// (bytes of index loaded per query, time until the
# results are shown, as the page itself reports it). Needs /usr/bin/time and chromium
# (Debian packages `time`, `chromium`).
#
# usage: benches/site.sh [POSTS] [SEARCH_POSTS]   (default: 200000 1000000; 0 skips a part)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin matterbak --example synth_archive
posts=${1:-200000} search_posts=${2:-1000000}
work=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
bin=target/release/matterbak

if [ "$posts" -gt 0 ]; then
    target/release/examples/synth_archive "$work/a" "$posts" 1000 4096 20 2>/dev/null
    sync
    /usr/bin/time -f "%e %M" -o "$work/t1" $bin export --archive "$work/a" --format html -o "$work/site" >/dev/null 2>"$work/log1"
    /usr/bin/time -f "%e %M" -o "$work/t2" $bin export --archive "$work/a" --format html -o "$work/site" >/dev/null 2>"$work/log2"
    largest=$(find "$work/site" -name '*.html' -printf '%s %P\n' | sort -n | tail -1)
    read -r s1 kb1 <"$work/t1"
    read -r s2 kb2 <"$work/t2"
    echo "build:   $posts posts in $s1 s = $(awk -v p="$posts" -v s="$s1" 'BEGIN{printf "%.0f", p/s}') posts/s (target >= 20000); peak RSS $((kb1 / 1024)) MB (target < 200)"
    echo "         $(tail -1 "$work/log1")"
    echo "largest page: $largest bytes (target <= 1500000)"
    echo "no-op rebuild: $s2 s (target < 2), peak RSS $((kb2 / 1024)) MB; $(tail -1 "$work/log2")"
    rm -rf "$work/a" "$work/site"
fi

if [ "$search_posts" -gt 0 ]; then
    target/release/examples/synth_archive "$work/b" "$search_posts" 0 0 20 2>/dev/null
    /usr/bin/time -f "%e %M" -o "$work/t3" $bin export --archive "$work/b" --format html -o "$work/big" >/dev/null 2>/dev/null
    read -r s3 kb3 <"$work/t3"
    echo "search site: $search_posts posts built in $s3 s, peak RSS $((kb3 / 1024)) MB, index $(du -sm "$work/big/search" | cut -f1) MB in $(find "$work/big/search" -type f | wc -l) files"
    for q in 'synthetic%20message' 'message%20424242' '%22little%20text%22%20from%3Au0000000000000000000000007' 'in%3Achannel-7%20with' '42424*'; do
        dom=$(chromium --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
            --timeout=15000 --dump-dom "file://$work/big/index.html#q=$q" 2>/dev/null)
        status=$(grep -o '<p id="search-status">[^<]*' <<<"$dom" | sed 's/.*>//')
        bytes=0
        for url in $(grep -o 'data-resources="[^"]*"' <<<"$dom" | sed 's/data-resources="//; s/"$//' | tr ' ' '\n' | sort -u); do
            f=${url#file://}
            case "$f" in */search/*) bytes=$((bytes + $(stat -c %s "$f"))) ;; esac
        done
        echo "query #q=$q: $status; index loaded $bytes bytes (targets: <= 1048576 bytes, < 500 ms)"
    done
fi
