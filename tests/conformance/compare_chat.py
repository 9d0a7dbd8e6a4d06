#!/usr/bin/env python3
"""Compare `matterexport` 0.5.2 output with ours (`--flavor py`), channel by channel.

Markdown: identical bytes, flat and --threads. HGF: the same file members (Python's zip has
no directory entries, nor has ours); every JSON member identical bytes, except that
`generated_at` of skipped_attachments.json is the time of the run; attachments identical
bytes. Where the Python tool crashed on a missing attachment (no reference zip), ours must
list that attachment in skipped_attachments.json. Any difference fails.

usage: compare_chat.py OUT_DIR PY_DATA CHANNEL_FOLDER...
"""
import json
import re
import sys
import zipfile
from pathlib import Path

GENERATED_AT = re.compile(rb'"generated_at": "[0-9T:-]+"')


def zip_members(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def show(label, a, b):
    i = first_difference(a, b)
    return (f"{label}: differ at byte {i} (lengths {len(a)} / {len(b)}):\n"
            f"  python: {a[max(0, i - 80):i + 80]!r}\n  ours:   {b[max(0, i - 80):i + 80]!r}")


def compare_channel(out, data, folder, problems):
    cid = Path(folder).name.split("__")[0]
    kind = json.loads((data / (folder + ".json")).read_text("utf8")).get("type")
    checked = 0
    for suffix in (".md", ".threads.md"):
        py = (out / "py" / (cid + suffix)).read_bytes()
        rs = (out / "rs" / (cid + suffix)).read_bytes()
        if py != rs:
            problems.append(show(f"{folder}{suffix}", py, rs))
        checked += 1
    py_zip = out / "py" / (cid + ".zip")
    rs_zip = out / "rs" / (cid + ".zip")
    ours = zip_members(rs_zip)
    if not py_zip.exists():
        log = (out / "py" / (cid + ".hgf.log")).read_text("utf8", "replace")
        skipped = json.loads(ours.get("skipped_attachments.json", b"{}"))
        if "path should be string" in log and skipped.get("attachments"):
            return kind, checked, "python crashed on a missing attachment; ours lists it"
        problems.append(f"{folder}: no Python HGF zip and no reason found: {log.strip()}")
        return kind, checked, None
    theirs = zip_members(py_zip)
    if sorted(theirs) != sorted(ours):
        problems.append(f"{folder}.zip: members differ: python {sorted(theirs)} ours {sorted(ours)}")
    for name in sorted(set(theirs) & set(ours)):
        a, b = theirs[name], ours[name]
        if name == "skipped_attachments.json":
            a, b = GENERATED_AT.sub(b"", a), GENERATED_AT.sub(b"", b)
        if a != b:
            problems.append(show(f"{folder}.zip:{name}", a, b))
        checked += 1
    return kind, checked, None


def main():
    out, data, folders = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    problems, kinds, notes, checked = [], {}, [], 0
    for folder in folders:
        kind, n, note = compare_channel(out, data, folder, problems)
        kinds[kind] = kinds.get(kind, 0) + 1
        checked += n
        if note:
            notes.append(f"{folder}: {note}")
    print(f"compare_chat: {len(folders)} channels (types {dict(sorted(kinds.items()))}), "
          f"{checked} documents/members compared")
    for note in notes:
        print(f"  note: {note}")
    for kind in ("O", "D", "G"):
        if kind not in kinds:
            problems.append(f"no channel of type {kind} was compared")
    if problems:
        print(f"compare_chat: {len(problems)} difference(s):")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print("compare_chat: identical")


if __name__ == "__main__":
    main()
