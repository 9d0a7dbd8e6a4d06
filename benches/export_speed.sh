#!/usr/bin/env bash
# Export speed against the file system's own tools, on one disk: writing the folder layout of a
# generated 200,000-post archive shaped like a real workspace (examples/synth_archive.rs) vs
# `cp -r` of the finished layout, and the zip vs `zip -r -0` of it. One run of each; the post
# files written and the zip's entries are counted and must match the archive. Needs
# /usr/bin/time, zip and python3 (Debian packages `time`, `zip`, `python3`).
#
# usage: benches/export_speed.sh [POSTS ATTACHMENTS ATTACHMENT_BYTES]   (default: 200000 1000 65536)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
command -v zip >/dev/null || apt-get install -y -qq zip >/dev/null || die "needs zip (Debian package zip)"
cargo build --release --quiet --bin matterbak --example synth_archive
posts=${1:-200000} attachments=${2:-1000} bytes=${3:-65536}
work=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
bin=target/release/matterbak
synth "$work/archive" "$posts" "$attachments" "$bytes"
sync
secs() { /usr/bin/time -f %e -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; die "$1 failed"; }; cat "$work/t"; }
folder=$(secs target/release/matterbak export --archive "$work/archive" -d "$work/data" --no-zip)
cp_r=$(secs cp -r "$work/data" "$work/data-copy")
rm -rf "$work/data-copy"
both=$(secs target/release/matterbak export --archive "$work/archive" -d "$work/data2" -o "$work/out.zip")
zip0=$(cd "$work" && secs zip -r -0 -q "$work/ref.zip" data)
files=$(find "$work/data" -type f | wc -l)
written=$(post_files "$work/data")
[ "$written" = "$posts" ] || die "the layout holds $written post files, the archive $posts posts"
entries=$(python3 -c 'import sys, zipfile; print(len(zipfile.ZipFile(sys.argv[1]).infolist()))' "$work/out.zip")
in_layout=$(cd "$work/data2" && find . -mindepth 1 | wc -l)
[ "$entries" = "$in_layout" ] || die "the zip holds $entries entries, its layout $in_layout files and folders"
mb=$(du -sm "$work/data" | cut -f1)
awk -v f="$folder" -v c="$cp_r" -v b="$both" -v z="$zip0" -v p="$posts" -v n="$files" -v mb="$mb" 'BEGIN {
    printf "layout: %d files, %d MB on disk, %d posts\n", n, mb, p
    printf "folder: export --no-zip %.2f s (%.0f posts/s) | cp -r %.2f s | ratio %.2f (target <= 1.5)\n", f, p / f, c, f / c
    # export has no zip-only mode: folder + zip together against cp -r + zip -r -0.
    printf "zip:    export folder+zip %.2f s (%.0f posts/s) | cp -r + zip -r -0 %.2f s (zip -r -0 alone %.2f s) | ratio %.2f (target <= 1.5)\n", b, p / b, c + z, z, b / (c + z)
}'
