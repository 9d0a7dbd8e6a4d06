#!/usr/bin/env bash
# Import speed and memory: a synthetic archive of POSTS posts is exported to the Python
# matterbak's layout (the same files the Python tool writes), then `matterbak import` reads
# that backup into an empty archive. Prints posts/s and peak RSS against the targets
# (>= 20,000 posts/s, < 150 MB). Needs /usr/bin/time (Debian package `time`).
#
# usage: benches/import_speed.sh [POSTS ATTACHMENTS ATTACHMENT_BYTES]   (default: 200000 1000 65536)
#        PROFILE=debug benches/import_speed.sh …   (skip the release build; slower figures)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
flag=--release
[ "$profile" = debug ] && flag=
cargo build $flag --quiet --bin matterbak --example synth_archive
bin=target/$profile
posts=${1:-200000} attachments=${2:-1000} bytes=${3:-65536}
work=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
"$bin/examples/synth_archive" "$work/source" "$posts" "$attachments" "$bytes" 2>/dev/null
"$bin/matterbak" export --archive "$work/source" -d "$work/backup" -o "$work/backup.zip" >/dev/null 2>&1
sync
# import_one NAME BACKUP: times the import of BACKUP into a new archive and checks its posts.
import_one() {
    /usr/bin/time -f "%e %M %U %S" -o "$work/t" "$bin/matterbak" import --archive "$work/archive-$1" "$2" > "$work/out"
    read -r secs rss_kb user sys < "$work/t"
    imported=$("$bin/matterbak" sql --archive "$work/archive-$1" --format csv "SELECT count(*) FROM posts" | tail -n 1)
    [ "$imported" = "$posts" ] || { echo "import_speed: $imported of $posts posts imported"; cat "$work/out"; exit 1; }
    awk -v s="$secs" -v k="$rss_kb" -v p="$posts" -v prof="$profile" -v what="$1" -v u="$user" -v y="$sys" 'BEGIN {
        printf "import of the %s (%s build): %d posts in %.2f s = %.0f posts/s (target >= 20000), %.2f s of CPU; peak RSS %.0f MB (target < 150)\n", what, prof, p, s, p / s, u + y, k / 1024
    }'
}
import_one dir "$work/backup"
import_one zip "$work/backup.zip"
