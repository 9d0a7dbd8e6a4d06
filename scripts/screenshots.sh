#!/usr/bin/env bash
# The README's screenshots of the website (docs/site-channel.png, site-thread.png,
# site-search.png, site-phone.png), taken with headless Chromium from file:// on a site
# built from a generated workspace shaped like a real one (examples/synth_archive.rs:
# threads with a long tail and one very long thread, Markdown, code, mentions, reactions).
# Needs chromium (Debian package chromium). Each PNG must stay under 200 kB.
#
# usage: scripts/screenshots.sh [POSTS]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "needs chromium (apt-get install chromium)" >&2; exit 1; }
posts=${1:-20000}
cargo build --quiet --bin matterbak --example synth_archive
work=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
target/debug/examples/synth_archive "$work/a" "$posts" 40 2048 6 2>/dev/null
target/debug/matterbak export --archive "$work/a" --format html --tz UTC -o "$work/site" >/dev/null
site=$work/site

# shot NAME WIDTH HEIGHT PATH[#…]: the page as a browser window of that size shows it after
# its scripts ran (a search address searches). Channel pages are taken at their top
# (#top: an address naming a place keeps the newest page from scrolling to its end, which
# headless Chromium's --screenshot paints blank).
shot() {
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile" \
        --window-size="$2,$3" --virtual-time-budget=10000 --screenshot="docs/site-$1.png" \
        "file://$site/$4" 2>/dev/null
    size=$(stat -c %s "docs/site-$1.png")
    [ "$size" -lt 200000 ] || { echo "docs/site-$1.png is $size bytes (keep it under 200 kB)" >&2; exit 1; }
    echo "docs/site-$1.png: $size bytes ($4)"
}
# The channel with the most pages, and the longest thread (most pages, then most bytes).
channel=$(cd "$site" && for d in c/*/; do echo "$(ls "$d" | grep -c '^[0-9]*\.html$') $d"; done | sort -n | tail -1 | cut -d' ' -f2)
thread=$(cd "$site" && ls -S c/*/t-*.html | grep -v -- '-[0-9]*\.html$' | head -1)
shot channel 1100 720 "${channel}index.html#top"
shot thread 1100 720 "$thread"
shot search 1100 720 "index.html#q=release"
shot phone 360 740 "${channel}index.html#top"
