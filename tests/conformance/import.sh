#!/usr/bin/env bash
# Import conformance: backups written by the real Python matterbak (0.4.0 and 0.5.2 from
# PyPI, each in a throwaway virtualenv) of the mock's sample workspace.
# 1. Round trip: each backup (data dir, and zip) imported into an empty archive and exported
#    again must equal the original file for file, apart from the order of reply ids in
#    threads files (the one difference a round trip can have; compare.py --only).
# 2. Merge: after the mock's update scenario (posts deleted, edited, added…), a sync into a
#    new archive followed by an import of the old backup must hold the union: the deleted
#    post back (marked deleted and imported), both versions of the edited post, and every
#    post of both in the export.
#
# usage: tests/conformance/import.sh [path/to/matterbak]   (default: target/debug/matterbak)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
use_binary "${1:-}"
setup_work
cd "$work"

fail() { echo "import conformance: $*"; exit 1; }
sql() { "$ours" sql --archive "$1" --format csv "$2" | tail -n +2; }

for version in 0.4.0 0.5.2; do
    echo "== Python matterbak $version"
    install_python "$version" "$work/venv-$version"
    start_mock
    rm -rf py rt-dir rt-zip merge && mkdir py
    TZ=UTC "$work/venv-$version/bin/matterbak" --credentials credentials.json --channels channels.json \
        --rate-limit 0 -d py/data -o py/matterbak_alice.zip > "py-$version.log" 2>&1 \
        || { cat "py-$version.log"; fail "the Python matterbak $version failed"; }

    for input in dir zip; do
        backup=py/data
        [ "$input" = zip ] && backup=py/matterbak_alice.zip
        echo "-- round trip of the $input backup"
        "$ours" import --archive "rt-$input/archive" "$backup" > "rt-$input.log" 2>&1 \
            || { cat "rt-$input.log"; fail "import of the $version $input backup failed"; }
        TZ=UTC "$ours" export --archive "rt-$input/archive" -d "rt-$input/data" -o "rt-$input/out.zip" \
            > /dev/null 2>&1 || fail "export after the import failed"
        # A round trip can change only the order of reply ids in threads files (Python
        # writes a set); every other file comes back byte for byte.
        python3 "$here/compare.py" --only threads-order py/data "rt-$input/data" \
            py/matterbak_alice.zip "rt-$input/out.zip"
    done

    echo "-- merge: update on the server, sync a new archive, import the old backup"
    apply_update_scenario
    TZ=UTC "$ours" sync --archive merge/archive --credentials credentials.json --channels channels.json \
        --rate-limit 0 --quiet > merge-sync.log 2>&1 || { cat merge-sync.log; fail "sync failed"; }
    "$ours" import --archive merge/archive py/data > merge-import.log 2>&1 \
        || { cat merge-import.log; fail "import into the synced archive failed"; }
    back=$(sql merge/archive "SELECT count(*) FROM posts WHERE imported_from IS NOT NULL AND delete_at > 0 AND message LIKE 'Anyone up for lunch?%'")
    [ "$back" = 1 ] || fail "the post deleted on the server is not back (marked deleted and imported): $back"
    versions=$(sql merge/archive "SELECT count(*) FROM post_versions v JOIN posts p ON p.id = v.post_id WHERE p.message LIKE 'Dev update 20:%(edited after release)' AND v.message LIKE 'Dev update 20:%' AND v.message NOT LIKE '%(edited after release)'")
    [ "$versions" = 1 ] || fail "the edited post does not keep its earlier version: $versions"
    TZ=UTC "$ours" export --archive merge/archive -d merge/data -o merge/out.zip > /dev/null 2>&1 \
        || fail "export of the merged archive failed"
    python3 - py/data merge/data <<'PY' || fail "the export of the merged archive is not the union"
import sys
from pathlib import Path
def posts(root):
    # Post files: <time>__<post id>.json directly inside a channel folder.
    return {p.name.split("__")[-1] for p in Path(root).rglob("*__*.json")
            if p.parent.name != "files" and p.parent.parent.name in ("direct", "groups")
            or p.parent.name != "files" and p.parent.parent.parent.name == "teams"}
old, union = posts(sys.argv[1]), posts(sys.argv[2])
missing = old - union
print(f"   union: {len(union)} posts exported, {len(old)} in the old backup, {len(missing)} of them missing")
sys.exit(1 if missing else 0)
PY
    grep -q "Release 2.0 is out" -r merge/data || fail "a post made after the backup is missing from the union"
    echo "   merge ok: $(tail -n 1 merge-import.log)"
done
echo "import conformance: ok"
