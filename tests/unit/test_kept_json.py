"""``render.kept_json``: a read's JSON is the kept resource's, encoded once, and follows it."""

from __future__ import annotations

import msgspec

from gateway.fhir.registry import RESOURCES
from gateway.fhir.render import kept_json
from gateway.store.rowmemo import MemoRow, RowMemo

OBSERVATION = RESOURCES["Observation"]


def _row() -> MemoRow:
    row = RowMemo(10).rows(("objectId", "notes"), (), [("a", "x")])[0]
    assert isinstance(row, MemoRow)
    return row


def test_the_bytes_are_the_kept_resource_and_follow_it_when_it_is_mapped_anew() -> None:
    row, options = _row(), object()
    assert kept_json(OBSERVATION, row, options) is None  # nothing mapped yet
    row.memo.renders[OBSERVATION.type] = (options, {"resourceType": "Observation", "id": "a", "note": "x"})
    first = kept_json(OBSERVATION, row, options)
    assert first is not None and msgspec.json.decode(first)["note"] == "x"
    assert kept_json(OBSERVATION, row, options) is first  # encoded once
    row.memo.renders[OBSERVATION.type] = (options, {"resourceType": "Observation", "id": "a", "note": "y"})
    again = kept_json(OBSERVATION, row, options)
    assert again is not None and msgspec.json.decode(again)["note"] == "y"


def test_nothing_is_kept_for_other_options_or_a_plain_record() -> None:
    row, options = _row(), object()
    row.memo.renders[OBSERVATION.type] = (options, {"resourceType": "Observation", "id": "a"})
    assert kept_json(OBSERVATION, row, object()) is None
    assert kept_json(OBSERVATION, dict(row), options) is None
