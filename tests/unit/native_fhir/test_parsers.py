"""Reference-range strings and UCUM detection."""

from __future__ import annotations

import pytest

from mappings.native_fhir._refrange import parse_range, range_text
from mappings.native_fhir._ucum import ucum_code


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("3.5-5.0", 3.5, 5.0),
        ("3.5 - 5.0", 3.5, 5.0),
        ("4.3 to 6.2", 4.3, 6.2),
        ("70_105", 70, 105),
        ("-2.0-2.0", -2.0, 2.0),
        ("-5--1", -5, -1),
        ("<200", None, 200),
        ("<=200", None, 200),
        (">60", 60, None),
        (">=60", 60, None),
        ("negative", None, None),
        ("", None, None),
        ("1-2-3", None, None),
    ],
)
def test_parse_range(text: str, low: float | None, high: float | None) -> None:
    assert parse_range(text) == (low, high)


def test_range_text_rebuilt_when_only_bounds_are_sent() -> None:
    assert range_text([{"low": {"value": 1}, "high": {"value": 2.5}}]) == "1-2.5"
    assert range_text([{"high": {"value": 200}}]) == "<=200"
    assert range_text([{"low": {"value": 60}}]) == ">=60"
    assert range_text([{"text": "negative"}]) == "negative"


@pytest.mark.parametrize(
    ("units", "code"),
    [
        ("mg/dL", "mg/dL"),
        ("10*3/uL", "10*3/uL"),
        ("mL/min/{1.73_m2}", "mL/min/{1.73_m2}"),
        ("%", "%"),
        ("mEq/L", "meq/L"),
        ("IU/L", "[IU]/L"),
        ("cells/uL", None),
        ("per high power field", None),
        ("", None),
    ],
)
def test_ucum_code(units: str, code: str | None) -> None:
    assert ucum_code(units) == code
