"""The row memo (``gateway.store.rowmemo``): keyed by stored values, fresh dicts per caller, bounded."""

from __future__ import annotations

import json

from gateway.store.rowmemo import MemoRow, RowMemo

NAMES = ("objectId", "value", "_rperm")
CONVERT = ((2, json.loads),)


def test_an_unchanged_row_is_decoded_once_and_every_caller_gets_its_own_dict() -> None:
    memo = RowMemo(10)
    first = memo.rows(NAMES, CONVERT, [("a", "1", '["*"]')])[0]
    again = memo.rows(NAMES, CONVERT, [("a", "1", '["*"]')])[0]
    assert type(first) is MemoRow and first == {"objectId": "a", "value": "1", "_rperm": ["*"]}
    assert again.memo is first.memo and again is not first
    first["value"] = "mutated by a caller"
    assert memo.rows(NAMES, CONVERT, [("a", "1", '["*"]')])[0]["value"] == "1"


def test_a_changed_row_replaces_its_entry() -> None:
    memo = RowMemo(10)
    before = memo.rows(NAMES, CONVERT, [("a", "1", '["*"]')])[0]
    before.memo.renders["k"] = {"value": "1"}
    after = memo.rows(NAMES, CONVERT, [("a", "2", '["*"]')])[0]
    assert after["value"] == "2" and after.memo is not before.memo and "k" not in after.memo.renders
    assert len(memo) == 1  # the old version does not linger
    # Any column counts, internal ones included: a narrowed ACL is a new entry too.
    narrowed = memo.rows(NAMES, CONVERT, [("a", "2", '["role:x"]')])[0]
    assert narrowed["_rperm"] == ["role:x"] and narrowed.memo is not after.memo


def test_rows_without_an_object_id_are_found_by_all_their_values() -> None:
    memo = RowMemo(10)
    names = ("name", "value")
    one = memo.rows(names, (), [("x", "1")])[0]
    assert memo.rows(names, (), [("x", "1")])[0].memo is one.memo
    assert memo.rows(names, (), [("x", "2")])[0].memo is not one.memo and len(memo) == 2


def test_rows_of_another_shape_never_share_an_entry() -> None:
    memo = RowMemo(10)
    one = memo.rows(NAMES, CONVERT, [("a", "1", "[]")])[0]
    other = memo.rows(("objectId", "other", "_wperm"), (), [("a", "1", "[]")])[0]
    assert other == {"objectId": "a", "other": "1", "_wperm": "[]"} and other.memo is not one.memo


def test_least_recently_used_rows_are_dropped_at_capacity() -> None:
    memo = RowMemo(2)
    a = memo.rows(NAMES, (), [("a", "1", "")])[0].memo
    b = memo.rows(NAMES, (), [("b", "1", "")])[0].memo
    assert memo.rows(NAMES, (), [("a", "1", "")])[0].memo is a  # a is now the most recent
    memo.rows(NAMES, (), [("c", "1", "")])  # drops b
    assert len(memo) == 2
    assert memo.rows(NAMES, (), [("a", "1", "")])[0].memo is a
    assert memo.rows(NAMES, (), [("b", "1", "")])[0].memo is not b and len(memo) == 2


def test_capacity_zero_decodes_plain_dicts() -> None:
    memo = RowMemo(0)
    rows = memo.rows(NAMES, CONVERT, [("a", "1", "[1]")])
    assert type(rows[0]) is dict and rows[0]["_rperm"] == [1] and len(memo) == 0


def test_public_row_drops_internal_columns_and_keeps_the_entry() -> None:
    memo = RowMemo(10)
    row = memo.rows(NAMES, CONVERT, [("a", "1", "[]")])[0]
    public = row.memo.public_row()
    assert public == {"objectId": "a", "value": "1"} and public.memo is row.memo


def test_rows_holding_credentials_are_never_kept() -> None:
    memo = RowMemo(10)
    rows = memo.rows(("objectId", "username", "_hashed_password"), (), [("u", "alice", "$argon2id$...")])
    assert type(rows[0]) is dict and rows[0]["username"] == "alice" and len(memo) == 0


def test_a_row_is_current_only_under_the_counter_it_was_fetched_under() -> None:
    memo = RowMemo(10)
    assert memo.current(NAMES, CONVERT, "a", 5) is None  # never seen
    row = memo.rows(NAMES, CONVERT, [("a", "1", '["*"]')])[0]
    assert isinstance(row, MemoRow)
    assert memo.current(NAMES, CONVERT, "a", 5) is None  # fetched under no counter
    row.memo.counter = 5
    kept = memo.current(NAMES, CONVERT, "a", 5)
    assert kept == row and kept is not row and kept is not None and kept.memo is row.memo
    assert memo.current(NAMES, CONVERT, "a", 6) is None  # the class changed since
    assert memo.current(("objectId", "other", "_rperm"), CONVERT, "a", 5) is None  # another shape
    # Fetched again with other values: a new entry, which no counter vouches for yet.
    memo.rows(NAMES, CONVERT, [("a", "2", '["*"]')])
    assert memo.current(NAMES, CONVERT, "a", 5) is None


def test_nothing_is_current_when_remembering_is_off() -> None:
    memo = RowMemo(0)
    memo.rows(NAMES, CONVERT, [("a", "1", '["*"]')])
    assert memo.current(NAMES, CONVERT, "a", 0) is None
