#!/usr/bin/env bash
# Peak memory (max RSS) of `matterbak export` on generated archives of growing size, shaped
# like a real workspace (examples/synth_archive.rs): it must stay flat, because export
# streams rows from SQLite and bytes from blobs. Each export must succeed and write every post.
#
# usage: benches/export_memory.sh            (builds release binaries; uses a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
bin=target/release/matterbak
cargo build --release --quiet --bin matterbak --example synth_archive
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf "%-10s %-12s %-12s %-10s %-12s\n" posts attachments bytes_each seconds max_rss_MB
for spec in "20000 100 65536" "200000 1000 65536" "20000 4 104857600"; do
    set -- $spec
    target/release/examples/synth_archive "$work/a-$1-$3" "$1" "$2" "$3" 2>/dev/null
    check_posts "$work/a-$1-$3" "$1"
    /usr/bin/time -f "%e %M" -o "$work/time" target/release/matterbak export \
        --archive "$work/a-$1-$3" -d "$work/data-$1-$3" -o "$work/out-$1-$3.zip" > /dev/null 2>"$work/err" ||
        { cat "$work/err"; die "export of $1 posts failed"; }
    written=$(post_files "$work/data-$1-$3")
    [ "$written" = "$1" ] || die "$written post files written of $1"
    read -r secs kb < "$work/time"
    printf "%-10s %-12s %-12s %-10s %-12s\n" "$1" "$2" "$3" "$secs" "$((kb / 1024))"
    rm -rf "$work/data-$1-$3" "$work/out-$1-$3.zip" "$work/a-$1-$3"
done
