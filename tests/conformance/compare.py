#!/usr/bin/env python3
"""Compare the Python matterbak's data dir and zip with ours, file for file.

Every difference must be one of the documented ones (README, "Differences from the Python
matterbak"); anything else fails the check. Prints a summary line per category.

usage: compare.py PY_DATA RS_DATA PY_ZIP RS_ZIP
"""
import json
import sys
import zipfile
from pathlib import Path

DOCUMENTED = {
    "archived-channel": "entries of archived channels (matterbak 0.4.0 does not list them)",
    "default-avatar": "server-generated placeholder pictures of users who uploaded none",
    "threads-order": "reply lists of threads files in another order (Python writes a set)",
    "extra-user": "users who wrote or reacted without being a listed member",
    "reply-count": "posts of threads: reply_count as at our last sync (Python: 0 from its first run)",
    "member-read-state": "member read state (last_viewed_at, msg_count...) refreshed daily, not every run",
}

# Fields each JSON difference category may differ in, and nothing else.
POST_FIELDS = {"reply_count"}
MEMBER_FIELDS = {"last_viewed_at", "last_update_at", "msg_count", "msg_count_root",
                 "mention_count", "mention_count_root", "urgent_mention_count"}


def without(value, fields):
    """The JSON value with the given keys removed from every object, at any depth."""
    if isinstance(value, dict):
        return {k: without(v, fields) for k, v in value.items() if k not in fields}
    if isinstance(value, list):
        return [without(v, fields) for v in value]
    return value


def differs_only_in(a, b, fields):
    """True when two JSON documents are equal once `fields` are removed (and differ before)."""
    try:
        x, y = json.loads(a), json.loads(b)
    except ValueError:
        return False
    return without(x, fields) == without(y, fields)


def load_tree(root):
    root = Path(root)
    entries = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        entries[rel] = None if path.is_dir() else path.read_bytes()
    return entries


def load_zip(path):
    entries = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename.rstrip("/")
            entries[name] = None if info.is_dir() else z.read(info)
    return entries


def archived_channel_prefixes(entries):
    """Paths (without .json) of channels whose stored object says they are archived."""
    prefixes = []
    for rel, data in entries.items():
        if data is None or not rel.endswith(".json") or rel.count("/") != 2:
            continue
        if not rel.startswith(("teams/", "direct/", "groups/")):
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            continue
        if isinstance(obj, dict) and "type" in obj and obj.get("delete_at", 0) > 0:
            prefixes.append(rel[: -len(".json")])
    return prefixes


def user_has_picture(entries, rel):
    """True when the user's JSON says a picture was uploaded."""
    stem = rel.rsplit("__image.", 1)[0]
    data = entries.get(stem + ".json")
    if data is None:
        return True
    return json.loads(data).get("last_picture_update", 0) > 0


def same_threads(a, b):
    try:
        x, y = json.loads(a), json.loads(b)
    except ValueError:
        return False
    return isinstance(x, dict) and isinstance(y, dict) and \
        {k: sorted(v) for k, v in x.items()} == {k: sorted(v) for k, v in y.items()}


def compare(py, rs, label):
    counts = {key: 0 for key in DOCUMENTED}
    unexpected = []
    archived = archived_channel_prefixes(rs)
    identical = 0
    for rel in sorted(set(py) | set(rs)):
        a, b = py.get(rel, "missing"), rs.get(rel, "missing")
        if a == b:
            identical += 1
            continue
        if a == "missing" and any(rel in (p, p + ".json") or rel.startswith(p + "/") or rel.startswith(p + "__") for p in archived):
            counts["archived-channel"] += 1
        elif b == "missing" and rel.startswith("users/") and "__image." in rel and not user_has_picture(py, rel):
            counts["default-avatar"] += 1
        elif a == "missing" and rel.startswith("users/") and rel.endswith(".json"):
            counts["extra-user"] += 1
        elif rel.endswith("__threads.json") and isinstance(a, bytes) and isinstance(b, bytes) and same_threads(a, b):
            counts["threads-order"] += 1
        elif rel.endswith("__members.json") and isinstance(a, bytes) and isinstance(b, bytes) \
                and differs_only_in(a, b, MEMBER_FIELDS):
            counts["member-read-state"] += 1
        elif rel.endswith(".json") and isinstance(a, bytes) and isinstance(b, bytes) \
                and differs_only_in(a, b, POST_FIELDS):
            counts["reply-count"] += 1
        else:
            why = "only in Python" if b == "missing" else "only in ours" if a == "missing" else "content differs"
            unexpected.append(f"{rel}: {why}")
    total = len(set(py) | set(rs))
    print(f"{label}: {total} entries compared, {identical} identical, "
          + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
          + (f", {len(unexpected)} UNEXPECTED" if unexpected else ", 0 unexpected"))
    for line in unexpected[:50]:
        print(f"  UNEXPECTED {line}")
    return not unexpected


def main():
    py_data, rs_data, py_zip, rs_zip = sys.argv[1:5]
    ok = compare(load_tree(py_data), load_tree(rs_data), "data dir")
    ok &= compare(load_zip(py_zip), load_zip(rs_zip), "zip")
    if not ok:
        print("conformance: FAILED (differences not in the documented list)")
        sys.exit(1)
    print("conformance: ok")


if __name__ == "__main__":
    main()
