#!/usr/bin/env python3
"""Checks of compare.py itself: each documented difference is accepted only where its named
field really differs, everything else must be byte-identical, and --only narrows what is
accepted. Run by .ci/run before the conformance checks.

usage: python3 tests/conformance/test_compare.py
"""
import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402

# The Python tool's layout: a channel folder with post files, and users/.
CHANNEL = "teams/t1__eng/c1__town-square"
ARCHIVED = "teams/t1__eng/c2__old"
POST = f"{CHANNEL}/1700000000000__p1.json"
MEMBERS = f"{CHANNEL}__members.json"
THREADS = f"{CHANNEL}__threads.json"


def dump(value):
    """JSON text as the Python tool writes it (indented, keys in order, ASCII escapes)."""
    return json.dumps(value, indent=4).encode()


POST_VALUE = {"id": "p1", "user_id": "u1", "message": "h\u00e9llo", "reply_count": 0,
              "metadata": {"reactions": [{"user_id": "u2", "emoji_name": "+1"}]}}
MEMBERS_VALUE = [{"user_id": "u1", "msg_count": 3, "last_viewed_at": 10, "roles": "channel_user"}]
THREADS_VALUE = {"p1": ["r1", "r2", "r3"]}


def tree(**changes):
    """A data dir (relative path -> bytes); keyword arguments replace or add entries."""
    entries = {
        POST: dump(POST_VALUE),
        MEMBERS: dump(MEMBERS_VALUE),
        THREADS: dump(THREADS_VALUE),
        "users/u1__alice.json": dump({"id": "u1", "username": "alice"}),
    }
    entries.update({k.replace("__slash__", "/"): v for k, v in changes.items()})
    return entries


def run(py, rs, allowed=tuple(compare.DOCUMENTED)):
    return compare.compare(py, rs, "test", allowed)


class Compare(unittest.TestCase):
    def test_identical_trees_pass(self):
        self.assertTrue(run(tree(), tree()))

    def test_a_changed_reply_count_is_accepted(self):
        changed = dict(POST_VALUE, reply_count=2)
        self.assertTrue(run(tree(), {**tree(), POST: dump(changed)}))

    def test_the_same_value_in_other_json_text_is_unexpected(self):
        for other in (
            json.dumps(POST_VALUE, indent=4, sort_keys=True).encode(),  # key order
            json.dumps(POST_VALUE, indent=2).encode(),  # separators
            json.dumps(POST_VALUE, indent=4, ensure_ascii=False).encode(),  # escapes
            dump(POST_VALUE) + b"\n",  # a trailing newline
        ):
            self.assertFalse(run(tree(), {**tree(), POST: other}), other)

    def test_a_reply_count_change_with_another_change_is_unexpected(self):
        changed = dict(POST_VALUE, reply_count=2)
        self.assertFalse(run(tree(), {**tree(), POST: dump(changed) + b"\n"}))
        changed = dict(POST_VALUE, reply_count=2, message="hello")
        self.assertFalse(run(tree(), {**tree(), POST: dump(changed)}))

    def test_member_read_state_only_in_its_fields_and_only_in_members_files(self):
        moved = [dict(MEMBERS_VALUE[0], msg_count=5, last_viewed_at=20)]
        self.assertTrue(run(tree(), {**tree(), MEMBERS: dump(moved)}))
        roles = [dict(MEMBERS_VALUE[0], roles="channel_admin")]
        self.assertFalse(run(tree(), {**tree(), MEMBERS: dump(roles)}))
        self.assertFalse(run(tree(), {**tree(), MEMBERS: json.dumps(MEMBERS_VALUE).encode()}))
        # A post's msg_count is not read state.
        post = dict(POST_VALUE, msg_count=1)
        self.assertFalse(run({**tree(), POST: dump(post)},
                             {**tree(), POST: dump(dict(post, msg_count=2))}))

    def test_threads_order_only_when_the_order_differs(self):
        reordered = {"p1": ["r3", "r1", "r2"]}
        self.assertTrue(run(tree(), {**tree(), THREADS: dump(reordered)}))
        two = {"p1": ["r1", "r2"], "p2": ["r3"]}
        self.assertTrue(run({**tree(), THREADS: dump(two)},
                            {**tree(), THREADS: dump({"p2": ["r3"], "p1": ["r2", "r1"]})}))
        self.assertFalse(run({**tree(), THREADS: dump(two)},
                             {**tree(), THREADS: dump({"p2": ["r3"], "p1": ["r2"]})}))
        self.assertFalse(run(tree(), {**tree(), THREADS: json.dumps(THREADS_VALUE).encode()}))
        self.assertFalse(run(tree(), {**tree(), THREADS: dump({"p1": ["r1", "r2"]})}))
        self.assertFalse(run(tree(), {**tree(), THREADS: dump({"p1": ["r1", "r2", "r4"]})}))

    def test_extra_users_only_when_they_wrote_or_reacted_in_an_archived_channel(self):
        archived = {
            f"{ARCHIVED}.json": dump({"id": "c2", "type": "O", "delete_at": 5}),
            f"{ARCHIVED}/1700000000001__p9.json": dump(
                {"id": "p9", "user_id": "u7", "metadata": {"reactions": [{"user_id": "u8"}]}}),
        }
        ours = {**tree(), **archived}
        writer = {"users/u7__gone.json": dump({"id": "u7", "username": "gone"})}
        reactor = {"users/u8__fan.json": dump({"id": "u8", "username": "fan"})}
        stranger = {"users/u9__nobody.json": dump({"id": "u9", "username": "nobody"})}
        self.assertTrue(run(tree(), {**ours, **writer, **reactor}))
        self.assertFalse(run(tree(), {**ours, **stranger}))
        # One who wrote only in a channel that is not archived is no extra user either.
        self.assertFalse(run(tree(), {**tree(), **stranger,
                                      f"{CHANNEL}/1700000000002__p8.json": dump({"user_id": "u9"})}))

    def test_only_narrows_the_accepted_differences(self):
        reordered = {**tree(), THREADS: dump({"p1": ["r2", "r1", "r3"]})}
        self.assertTrue(run(tree(), reordered, ("threads-order",)))
        changed = {**tree(), POST: dump(dict(POST_VALUE, reply_count=2))}
        self.assertFalse(run(tree(), changed, ("threads-order",)))
        avatar = {**tree(), "users/u1__alice__image.png": b"png"}
        self.assertTrue(run(avatar, tree()))  # alice never uploaded a picture
        self.assertFalse(run(avatar, tree(), ("threads-order",)))

    def test_scan_finds_every_value_and_refuses_broken_json(self):
        text = '{"a": [1, "x\\"y", {"b": null}], "c": true}\n'
        self.assertEqual([(p, text[s:e]) for p, s, e in compare.scan(text)],
                         [(("a", 0), "1"), (("a", 1), '"x\\"y"'), (("a", 2, "b"), "null"),
                          (("c",), "true")])
        for broken in ('{"a": 1', '{"a": 1}}', '[1,]', '{"a" 1}', ''):
            with self.assertRaises(ValueError, msg=broken):
                compare.scan(broken)


if __name__ == "__main__":
    import io
    import contextlib
    # compare() prints its summary lines; keep the test output to unittest's.
    with contextlib.redirect_stdout(io.StringIO()):
        result = unittest.main(exit=False, verbosity=0).result
    print(f"test_compare: {result.testsRun} passed" if result.wasSuccessful()
          else f"test_compare: FAILED ({len(result.failures) + len(result.errors)})")
    sys.exit(0 if result.wasSuccessful() else 1)
