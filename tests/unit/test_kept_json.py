"""``render.kept_json``: a read's JSON is the kept resource's, encoded once, and follows it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

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


def test_a_search_bundle_spliced_from_kept_json_is_the_bundle_encoded() -> None:
    """``search._encoded_bundle`` must give exactly ``msgspec.json.encode(bundle)``."""
    from gateway.fhir.search import _encoded_bundle

    options = object()
    ctx: Any = SimpleNamespace(options=options)
    memo = RowMemo(10)
    rows = memo.rows(("objectId", "notes"), (), [("a", "x"), ("b", "y"), ("c", "z")])
    resources = []
    for row in rows[:2]:  # the third is not kept: encoded as usual
        mapped = {"resourceType": "Observation", "id": row["objectId"], "note": [{"text": row["notes"]}]}
        row.memo.renders[OBSERVATION.type] = (options, mapped)  # type: ignore[attr-defined]
        resources.append(mapped.copy())
    resources.append({"resourceType": "Observation", "id": "c", "note": [{"text": "z"}]})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": "http://x/fhir/Observation"}],
        "entry": [
            *(
                {"fullUrl": f"http://x/fhir/Observation/{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in resources
            ),
            {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}},
        ],
    }
    spliced = _encoded_bundle(ctx, OBSERVATION, bundle, list(rows))
    assert spliced == msgspec.json.encode(bundle)
    assert _encoded_bundle(ctx, OBSERVATION, {**bundle, "entry": bundle["entry"][2:]}, [dict(rows[2])]) is None
