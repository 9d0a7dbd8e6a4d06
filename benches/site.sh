#!/usr/bin/env bash
# The website (`export --format html`) on a generated workspace shaped like a real one
# (examples/synth_archive.rs: threads with a long tail and one thread of 3,000 replies,
# Markdown, code blocks, mentions, reactions, messages up to 16,383 characters, 20 channels):
#   build:  build speed (posts counted in the catalog, not the requested number), peak
#           memory, pages written, largest page; a rebuild with nothing changed; a rebuild
#           after one post was edited (as a sync enters an edit);
#   search: a site of SEARCH_POSTS posts searched in headless Chromium from file:// (bytes of
#           the search index loaded per query, as the browser's resource list and the page
#           report them; time until the results are shown, as the page's own timer reports
#           it). A query that does not finish, or finds nothing, fails the script.
# Needs /usr/bin/time and chromium (Debian packages `time`, `chromium`).
#
# usage: benches/site.sh [POSTS] [SEARCH_POSTS]   (default: 200000 1000000; 0 skips a part)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
command -v chromium >/dev/null || die "needs chromium (Debian package chromium)"
cargo build --release --quiet --bin matterbak --example synth_archive
posts=${1:-200000} search_posts=${2:-1000000}
work=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
bin=target/release/matterbak

# build NAME ARCHIVE SITE: times one `export --format html`; prints "seconds rss_mb" and keeps
# its summary line in $work/NAME.log.
build() {
    /usr/bin/time -f "%e %M" -o "$work/$1.t" $bin export --archive "$2" --format html -o "$3" \
        >/dev/null 2>"$work/$1.log" || { cat "$work/$1.log"; die "$1: export failed"; }
    grep -q '^site: ' "$work/$1.log" || die "$1: no summary line in the export's output"
    read -r s kb <"$work/$1.t"
    echo "$s $((kb / 1024))"
}
summary() { grep '^site: ' "$work/$1.log" | tail -n 1; }
# written NAME: pages written, from the summary line.
written() { summary "$1" | sed -E 's/.*pages: ([0-9]+) written.*/\1/'; }

if [ "$posts" -gt 0 ]; then
    need_disk $(( posts / 200000 + 1 ))
    synth "$work/a" "$posts" 1000 4096 20
    sync
    read -r s1 mb1 < <(build first "$work/a" "$work/site")
    largest=$(find "$work/site" -name '*.html' -printf '%s %P\n' | sort -n | tail -1)
    pages=$(find "$work/site" -name '*.html' | wc -l)
    echo "build: $posts posts (counted in the catalog) in $s1 s = $(awk -v p="$posts" -v s="$s1" 'BEGIN{printf "%.0f", p/s}') posts/s (target >= 20000); peak RSS $mb1 MB (target < 200); $pages HTML files"
    echo "  $(summary first)"
    echo "largest page: $largest bytes (target <= 1500000)"
    read -r s2 mb2 < <(build noop "$work/a" "$work/site")
    [ "$(written noop)" = 0 ] || die "the rebuild with nothing changed wrote pages: $(summary noop)"
    echo "rebuild, nothing changed: $s2 s (target < 2), peak RSS $mb2 MB"
    echo "  $(summary noop)"
    target/release/examples/synth_archive "$work/a" "$posts" 1000 4096 20 --edit $((posts / 2)) 2>>"$work/synth.log"
    read -r s3 mb3 < <(build edit "$work/a" "$work/site")
    [ "$(written edit)" -ge 1 ] || die "the rebuild after an edit wrote no page: $(summary edit)"
    grep -rq "(edited)" "$work/site" --include='*.html' || die "the edited text is in no page"
    echo "rebuild, one post edited: $s3 s, peak RSS $mb3 MB"
    echo "  $(summary edit)"
    rm -rf "$work/a" "$work/site"
fi

if [ "$search_posts" -gt 0 ]; then
    # Archive and site take about 0.9 GB per 200,000 posts of this shape (316 + 610 MB).
    need_disk $(( search_posts / 200000 + 1 ))
    synth "$work/b" "$search_posts" 0 0 20
    read -r s4 mb4 < <(build big "$work/b" "$work/big")
    echo "search site: $search_posts posts built in $s4 s, peak RSS $mb4 MB; archive $(du -sm "$work/b" | cut -f1) MB, site $(du -sm "$work/big" | cut -f1) MB; index $(du -sm "$work/big/search" | cut -f1) MB in $(find "$work/big/search" -type f | wc -l) files"
    rm -rf "$work/b"
    echo "  $(summary big)"
    # A common word, a rarer one, two words, a prefix, and the two filters (user-00003 and
    # channel-7 exist in every generated workspace).
    for q in 'release' 'rollback' 'deploy%20database' 'migrat*' 'from%3Auser-00003%20review' 'in%3Achannel-7%20backup'; do
        dom=$(chromium --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
            --virtual-time-budget=60000 --run-all-compositor-stages-before-draw \
            --dump-dom "file://$work/big/index.html#q=$q" 2>/dev/null) || die "chromium failed on #q=$q"
        grep -q 'data-search-done="1"' <<<"$dom" || die "query #q=$q did not finish"
        status=$(grep -o '<p id="search-status">[^<]*' <<<"$dom" | sed 's/.*>//')
        case "$status" in *result*) ;; *) die "query #q=$q: $status" ;; esac
        bytes=0
        for url in $(grep -o 'data-resources="[^"]*"' <<<"$dom" | sed 's/data-resources="//; s/"$//' | tr ' ' '\n' | sort -u); do
            f=${url#file://}
            case "$f" in */search/*) bytes=$((bytes + $(stat -c %s "$f"))) ;; esac
        done
        [ "$bytes" -gt 0 ] || die "query #q=$q loaded no index file"
        echo "query #q=$q: $status; index loaded $bytes bytes (targets: <= 1048576 bytes, < 500 ms)"
    done
fi
