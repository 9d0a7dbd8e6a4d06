#!/usr/bin/env bash
# Wall time and peak RSS of `matterexport md` / `hgf` (PyPI matterbak 0.5.2, Python 3.13)
# against ours (`export --format markdown|hgf --flavor py`) on one channel of a generated
# workspace (default 20,000 posts in 2 channels; the mock's generator puts about 11,000 in
# the busier one, which is exported), medians of 3 (every run must succeed), and a check that
# the outputs are identical (Markdown bytes; HGF members, JSON except `generated_at`): the
# script fails when they differ. Both back the same mock up first (the Python tool's backup
# is not timed).
# Needs network for PyPI and Python 3.13 (python3.13, pyenv's 3.13.0 or $PYTHON313).
#
# usage: benches/chat_export.sh [SIZES]     (default: posts=20000,attachments=200,channels=2)
#        MATTERBAK=path/to/matterbak to use a built binary (default: a release build)
set -euo pipefail
here=$(cd "$(dirname "$0")/../tests/conformance" && pwd)
cd "$(dirname "$0")/.."
. benches/lib.sh
need_time
sizes=${1:-posts=20000,attachments=200,channels=2},teams=1,users=20,attachment_bytes=1024,seed=1
if [ -z "${MATTERBAK:-}" ]; then
    cargo build --release --quiet --bin matterbak
    MATTERBAK=target/release/matterbak
fi
ours=$(cd "$(dirname "$MATTERBAK")" && pwd)/$(basename "$MATTERBAK")
. "$here/lib.sh"
find_python313
setup_work
export TZ=UTC
install_python 0.5.2 "$work/venv" "$python313"
start_mock --file-ids-always --generate "$sizes"
echo '{"teams": {"team-0": {}}}' > "$work/channels.json"
cd "$work"
"$work/venv/bin/matterbak" --credentials credentials.json --channels channels.json \
    --rate-limit 0 -d data -o py.zip > py-backup.log 2>&1
"$ours" sync --archive archive --credentials credentials.json --channels channels.json \
    --rate-limit 0 --quiet

# The busiest channel.
folder=$(cd data && for d in $(find teams -mindepth 2 -maxdepth 2 -type d); do
    echo "$(find "$d" -maxdepth 1 -name '*.json' | wc -l) $d"; done | sort -rn | head -n1 | cut -d' ' -f2)
cid=$(basename "$folder" | sed 's/__.*//')
posts=$(find "data/$folder" -maxdepth 1 -name '*.json' | wc -l)
echo "channel $folder: $posts posts"

for format in md hgf; do
    out=out.md; ext=markdown
    [ "$format" = hgf ] && { out=out.zip; ext=hgf; }
    read -r py_s py_kb < <(median3 bash -c "rm -f out.md out.zip; exec '$work/venv/bin/matterexport' $format -d data -c '$cid' -o $out")
    cp "$out" "py.$format"
    read -r rs_s rs_kb < <(median3 bash -c "rm -f out.md out.zip; exec '$ours' export --archive archive --format $ext --flavor py -c '$cid' -o $out")
    cp "$out" "rs.$format"
    echo "$format: python ${py_s} s ${py_kb} KB; ours ${rs_s} s ${rs_kb} KB; $(python3 -c "print(f'{$py_s / $rs_s:.1f}')")x faster"
done
cmp -s py.md rs.md || die "md: the documents differ"
echo "md: identical bytes"
python3 - <<'EOF'
import re, zipfile
a, b = zipfile.ZipFile("py.hgf"), zipfile.ZipFile("rs.hgf")
g = re.compile(rb'"generated_at": "[0-9T:-]+"')
names = sorted(i.filename for i in a.infolist())
same = names == sorted(i.filename for i in b.infolist()) and all(
    g.sub(b"", a.read(n)) == g.sub(b"", b.read(n)) for n in names)
print(f"hgf: {len(names)} members, {'identical' if same else 'DIFFERENT'}")
raise SystemExit(0 if same else 1)
EOF
