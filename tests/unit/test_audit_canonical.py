"""``audit.writer.canonical`` writes exactly what the chain format was defined as: ``json.dumps`` of
the hashed fields with sorted keys, compact separators and ASCII escapes, integral floats as
integers. It builds that text field by field for speed; any byte of difference would make every
hash written from now on disagree with ``audit verify`` and with the chains already stored."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.writer import HASHED_FIELDS, _numbers, canonical


def reference(values: dict[str, Any]) -> bytes:
    """The definition, written the plain way (``_numbers`` is the writer's own: what is tested here is
    the text built around it)."""
    return json.dumps(
        {k: _numbers(values.get(k)) for k in HASHED_FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(["", "Zoë Ångström 東京", '🩺 \u2028 "quoted" \\ back', "\ud800 lone", "\x00\x1f\x7f"])
)
_json = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(HASHED_FIELDS, _json)))
def test_canonical_is_the_defined_json(values: dict[str, Any]) -> None:
    assert canonical(values) == reference(values)


def test_canonical_of_a_typical_entry() -> None:
    values = {
        "objectId": "0000000001a",
        "seq": 46,
        "createdAt": "2026-12-03T12:00:00.000000+00:00",
        "actor": None,
        "actorName": "hl7:mllp",
        "entityType": "LabResult",
        "entityId": "abcdeFGHIJk",
        "patient": "p1",
        "action": "publish",
        "summary": "result final (version 1)",
        "metadata": {"version": 1, "status": "final", "message": "m1", "ratio": 2.0, "flag": True},
        "outcome": "success",
        "clientId": None,
        "sourceAddress": "127.0.0.1",
        "requestId": None,
        "prevHash": "0" * 64,
        "notHashed": "ignored",
    }
    assert canonical(values) == reference(values)
    assert b'"ratio":2,' in canonical(values)
    assert b"notHashed" not in canonical(values)
