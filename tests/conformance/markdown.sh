#!/usr/bin/env bash
# Conformance of `export --format markdown|hgf --flavor py` against the Python `matterexport`
# 0.5.2: installs matterbak 0.5.2 from PyPI into a throwaway virtualenv of Python 3.13 (its
# HGF zip is empty on older Pythons), backs the mock's sample workspace up with it and with
# our `sync`, then exports every channel (team, direct and group) with both tools and
# compares: Markdown byte for byte (flat and --threads), HGF zips member for member (JSON
# identical except `generated_at`). Two rounds: a first backup, and an update after the
# mock's standard mutations (edits, deletions, reactions). Times in a zone with DST
# (Europe/Berlin), which both tools use for post file names and printed times.
# The mock also serves its file-name scenario (channel eng/file-names, src/mock/file_names.rs):
# attachments named with tab, line breaks, `\`, `.`/`..`, leading dots, combining marks,
# right-to-left text, emoji, the longest name the Python tool can store, and two of one name
# on a post, whose paths must be the Python backup's (issue #26). The names beyond the
# Python tool (longer, or unsafe in a zip) are checked by tests/it/chat_export.rs.
#
# usage: tests/conformance/markdown.sh [path/to/matterbak]   (default: target/debug/matterbak)
#        PYTHON313=/path/to/python3.13 to choose the interpreter.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
use_binary "${1:-}"
find_python313
setup_work
export TZ=Europe/Berlin

install_python 0.5.2 "$work/venv" "$python313"

start_mock --file-ids-always
apply_file_names_scenario
cd "$work"
mkdir -p py rs

backup() {
    "$work/venv/bin/matterbak" --credentials credentials.json --channels channels.json \
        --rate-limit 0 -d py/data -o py/matterbak_alice.zip "$@" > "py-backup.log" 2>&1 \
        || { cat py-backup.log; echo "conformance: the Python matterbak failed"; exit 1; }
    "$ours" sync --archive rs/archive --credentials credentials.json --channels channels.json \
        --rate-limit 0 --quiet > rs-sync.log 2>&1 \
        || { cat rs-sync.log; echo "conformance: our sync failed"; exit 1; }
}

# Exports channel $1 (a channel id) with both tools into out/$round/{py,rs}/.
export_channel() {
    local cid=$1 dir="out/$round"
    mkdir -p "$dir/py" "$dir/rs"
    (cd py && "$work/venv/bin/matterexport" md -d data -c "$cid" -o "../$dir/py/$cid.md") \
        || { echo "conformance: matterexport md failed on $cid"; exit 1; }
    (cd py && "$work/venv/bin/matterexport" md -d data -c "$cid" --threads -o "../$dir/py/$cid.threads.md") \
        || { echo "conformance: matterexport md --threads failed on $cid"; exit 1; }
    "$ours" export --archive rs/archive --format markdown --flavor py -d data -c "$cid" \
        -o "$dir/rs/$cid.md" > /dev/null 2>> rs-export.log
    "$ours" export --archive rs/archive --format markdown --flavor py -d data -c "$cid" \
        --threads -o "$dir/rs/$cid.threads.md" > /dev/null 2>> rs-export.log
    # The Python tool crashes on a missing attachment (a documented bug we do not copy):
    # then there is no reference zip, and compare_chat.py checks ours lists the attachment.
    (cd py && "$work/venv/bin/matterexport" hgf -d data -c "$cid" -o "../$dir/py/$cid.zip") \
        > "$dir/py/$cid.hgf.log" 2>&1 || true
    "$ours" export --archive rs/archive --format hgf --flavor py -c "$cid" \
        -o "$dir/rs/$cid.zip" > /dev/null 2>> rs-export.log
}

compare_round() {
    # Every post folder of the Python data dir is a channel: team, direct and group.
    local folders
    folders=$(cd py/data && find teams direct groups -mindepth 1 -type d -name '*__*' \
        ! -name files | grep -E '^(teams/[^/]+/|direct/|groups/)[^/]+$' | sort)
    [ -n "$folders" ] || { echo "conformance: no channels in the Python backup"; exit 1; }
    for folder in $folders; do
        export_channel "$(basename "$folder" | sed 's/__.*//')"
    done
    python3 "$here/compare_chat.py" "out/$round" py/data $folders
}

round=first
echo "== round 1: first backup"
backup
compare_round

round=update
echo "== round 2: update after mutations"
apply_update_scenario
backup --update-old-posts
compare_round
