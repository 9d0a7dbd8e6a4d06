#!/usr/bin/env python3
"""Compare the Python matterbak's data dir and zip with ours, file for file.

Every difference must be one of the documented ones (README, "Differences from the Python
matterbak"); anything else fails the check. A JSON file counts as a documented difference only
when it is byte-identical to Python's apart from the values of the fields that difference
names, and at least one of those values really differs: a change of key order, separators,
escapes or a trailing newline is UNEXPECTED. Prints a summary line per category.

usage: compare.py [--only CATEGORY[,CATEGORY...]] PY_DATA RS_DATA PY_ZIP RS_ZIP
       (--only: the categories accepted; the import round trip accepts only threads-order)
"""
import json
import re
import sys
import zipfile
from json.decoder import scanstring
from pathlib import Path

DOCUMENTED = {
    "archived-channel": "entries of archived channels (matterbak 0.4.0 does not list them)",
    "default-avatar": "server-generated placeholder pictures of users who uploaded none",
    "threads-order": "threads files with their roots or reply ids in another order (Python writes sets; its update run moves roots)",
    "extra-user": "users who wrote or reacted in an archived channel without being a listed member",
    "reply-count": "posts of threads: reply_count as at our last sync (Python: 0 from its first run)",
    "member-read-state": "member read state (last_viewed_at, msg_count...) refreshed daily, not every run",
}

# Fields each JSON difference category may differ in, and nothing else.
POST_FIELDS = {"reply_count"}
MEMBER_FIELDS = {"last_viewed_at", "last_update_at", "msg_count", "msg_count_root",
                 "mention_count", "mention_count_root", "urgent_mention_count"}

WHITESPACE = re.compile(r"[ \t\n\r]*")
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def scan(text):
    """Every scalar value of a JSON text as (path, start, end): its place in the document
    (a tuple of keys and list indices) and its span in `text`. ValueError when `text` is not
    one JSON document (surrounding whitespace allowed)."""
    spans = []

    def skip(i):
        return WHITESPACE.match(text, i).end()

    def value(i, path):
        i = skip(i)
        if i >= len(text):
            raise ValueError("unexpected end")
        c = text[i]
        if c in "{[":
            close = "}" if c == "{" else "]"
            i = skip(i + 1)
            if text[i:i + 1] == close:
                return i + 1
            index = 0
            while True:
                i = skip(i)
                if c == "{":
                    if text[i:i + 1] != '"':
                        raise ValueError(f"key expected at {i}")
                    key, i = scanstring(text, i + 1)
                    i = skip(i)
                    if text[i:i + 1] != ":":
                        raise ValueError(f"':' expected at {i}")
                    i = value(i + 1, path + (key,))
                else:
                    i = value(i, path + (index,))
                    index += 1
                i = skip(i)
                if text[i:i + 1] == ",":
                    i += 1
                elif text[i:i + 1] == close:
                    return i + 1
                else:
                    raise ValueError(f"',' or {close!r} expected at {i}")
        if c == '"':
            _, end = scanstring(text, i + 1)
        else:
            m = NUMBER.match(text, i)
            end = m.end() if m else next(
                (i + len(w) for w in ("true", "false", "null") if text.startswith(w, i)), None)
            if end is None or end == i:
                raise ValueError(f"value expected at {i}")
        spans.append((path, i, end))
        return end

    end = skip(value(0, ()))
    if end != len(text):
        raise ValueError(f"trailing data at {end}")
    return spans


def split(data, named):
    """The text with the values at paths `named` accepts cut out, and those values in order
    with their paths; None when `data` is not a UTF-8 JSON document."""
    try:
        text = data.decode("utf-8")
        spans = scan(text)
    except (UnicodeDecodeError, ValueError):
        return None
    rest, values, at = [], [], 0
    for path, start, end in spans:
        if named(path):
            rest.append(text[at:start])
            values.append((path, text[start:end]))
            at = end
    rest.append(text[at:])
    return rest, values


def differs_only_in(a, b, named):
    """True when two JSON files are byte-identical apart from the values at the paths `named`
    accepts, and at least one of those values differs."""
    x, y = split(a, named), split(b, named)
    if x is None or y is None or x[0] != y[0]:
        return False
    paths = [p for p, _ in x[1]]
    return paths == [p for p, _ in y[1]] and x[1] != y[1]


def field_in(fields):
    return lambda path: bool(path) and path[-1] in fields


# How the Python tool may have written a JSON file (json.dump's parameters); a file that is
# the dump of its value with one of these is "in the Python tool's format".
DUMP_FORMATS = ({}, {"indent": 4}, {"indent": 2}, {"separators": (",", ":")})


def same_threads(a, b):
    """True when two threads files (root id -> reply ids) hold the same roots with the same
    reply ids, differ only in the order of roots or of reply ids, and ours is written exactly
    as the Python tool writes its own (so no byte but the order can differ)."""
    try:
        x, y = json.loads(a), json.loads(b)
    except ValueError:
        return False
    if not (isinstance(x, dict) and isinstance(y, dict)) or a == b:
        return False
    if x.keys() != y.keys() or any(
            not isinstance(x[k], list) or not isinstance(y[k], list) or sorted(x[k]) != sorted(y[k])
            for k in x):
        return False
    formats = [f for f in DUMP_FORMATS if json.dumps(x, **f).encode() == a]
    return any(json.dumps(y, **f).encode() == b for f in formats)


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


def archived_writers(entries, prefixes):
    """Ids of the users who wrote or reacted in the archived channels (their post files)."""
    writers = set()
    for rel, data in entries.items():
        if data is None or not rel.endswith(".json") or "/files/" in rel:
            continue
        if not any(rel.startswith(p + "/") for p in prefixes):
            continue
        try:
            post = json.loads(data)
        except ValueError:
            continue
        if not isinstance(post, dict):
            continue
        writers.add(post.get("user_id"))
        reactions = (post.get("metadata") or {}).get("reactions") or []
        writers.update(r.get("user_id") for r in reactions if isinstance(r, dict))
    writers.discard(None)
    return writers


def user_id(data):
    try:
        user = json.loads(data)
    except ValueError:
        return None
    return user.get("id") if isinstance(user, dict) else None


def category(rel, a, b, py, rs, archived, writers):
    """The documented difference between Python's entry `a` and ours `b`, or None."""
    both = isinstance(a, bytes) and isinstance(b, bytes)
    if a == "missing" and any(rel in (p, p + ".json") or rel.startswith(p + "/") or rel.startswith(p + "__") for p in archived):
        return "archived-channel"
    if b == "missing" and rel.startswith("users/") and "__image." in rel and not user_has_picture(py, rel):
        return "default-avatar"
    if a == "missing" and rel.startswith("users/") and rel.endswith(".json") \
            and isinstance(b, bytes) and user_id(b) in writers:
        return "extra-user"
    if both and rel.endswith("__threads.json") and same_threads(a, b):
        return "threads-order"
    if both and rel.endswith("__members.json") and differs_only_in(a, b, field_in(MEMBER_FIELDS)):
        return "member-read-state"
    if both and rel.endswith(".json") and differs_only_in(a, b, field_in(POST_FIELDS)):
        return "reply-count"
    return None


def compare(py, rs, label, allowed=tuple(DOCUMENTED)):
    counts = {key: 0 for key in DOCUMENTED}
    unexpected = []
    archived = archived_channel_prefixes(rs)
    writers = archived_writers(rs, archived)
    identical = 0
    for rel in sorted(set(py) | set(rs)):
        a, b = py.get(rel, "missing"), rs.get(rel, "missing")
        if a == b:
            identical += 1
            continue
        kind = category(rel, a, b, py, rs, archived, writers)
        if kind in allowed:
            counts[kind] += 1
        else:
            why = "only in Python" if b == "missing" else "only in ours" if a == "missing" else "content differs"
            if kind:
                why += f" ({kind}, not accepted here)"
            unexpected.append(f"{rel}: {why}")
    total = len(set(py) | set(rs))
    print(f"{label}: {total} entries compared, {identical} identical, "
          + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
          + (f", {len(unexpected)} UNEXPECTED" if unexpected else ", 0 unexpected"))
    for line in unexpected[:50]:
        print(f"  UNEXPECTED {line}")
    return not unexpected


def main():
    args = sys.argv[1:]
    allowed = tuple(DOCUMENTED)
    if args[:1] == ["--only"]:
        allowed = tuple(args[1].split(","))
        unknown = set(allowed) - set(DOCUMENTED)
        if unknown:
            sys.exit(f"compare.py: unknown categories {sorted(unknown)}")
        args = args[2:]
    py_data, rs_data, py_zip, rs_zip = args[:4]
    ok = compare(load_tree(py_data), load_tree(rs_data), "data dir", allowed)
    ok &= compare(load_zip(py_zip), load_zip(rs_zip), "zip", allowed)
    if not ok:
        print("conformance: FAILED (differences not in the documented list)")
        sys.exit(1)
    print("conformance: ok")


if __name__ == "__main__":
    main()
