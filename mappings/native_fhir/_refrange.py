"""``Observation.referenceRange`` from the range string as sent (HL7 OBX-7).

Forms parsed into ``low``/``high`` (the string always stays in ``text``):
``3.5-5.0``, ``3.5 - 5.0``, ``-2.0-2.0``, ``4.3 to 6.2``, ``70_105`` (low and high);
``<200``, ``<=200`` (high); ``>60``, ``>=60`` (low). Anything else (``negative``) is
text only. ``SimpleQuantity`` has no comparator, so ``<`` and ``<=`` differ only in text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from ._datatypes import check_keys, text_value
from ._errors import MappingError
from ._quantity import NUMBER, Number, fmt, quantity, read_quantity, to_number

_BOUNDS: Final = re.compile(rf"^\s*({NUMBER})\s*(?:-|\u2013|to|_)\s*({NUMBER})\s*$", re.IGNORECASE)
_ONE_SIDED: Final = re.compile(rf"^\s*(<=|>=|<|>|\u2264|\u2265)\s*({NUMBER})\s*$")


@lru_cache(maxsize=4096)
def parse_range(text: str) -> tuple[Number | None, Number | None]:
    """(low, high) of a reference-range string; (None, None) when it is not numeric."""
    match = _BOUNDS.match(text)
    if match:
        return to_number(match.group(1)), to_number(match.group(2))
    match = _ONE_SIDED.match(text)
    if match:
        bound = to_number(match.group(2))
        return (None, bound) if match.group(1) in ("<", "<=", "\u2264") else (bound, None)
    return None, None


def reference_range(text: str | None, units: str | None, units_system: str | None) -> list[dict[str, Any]]:
    """``referenceRange`` (zero or one entry) with ``low``/``high`` in the result's units."""
    if not text:
        return []
    low, high = parse_range(text)
    out: dict[str, Any] = {}
    if low is not None:
        out["low"] = quantity(low, units, units_system)
    if high is not None:
        out["high"] = quantity(high, units, units_system)
    out["text"] = text
    return [out]


def range_text(ranges: Any) -> str | None:
    """Native ``referenceRange`` from FHIR: the ``text``, else rebuilt from ``low``/``high``."""
    if not ranges:
        return None
    if not isinstance(ranges, list) or len(ranges) > 1:
        raise MappingError("only one reference range can be stored", "Observation.referenceRange[1]")
    entry: Mapping[str, Any] = check_keys(ranges[0], {"low", "high", "text"}, "Observation.referenceRange[0]")
    if "text" in entry:
        return text_value(entry["text"], "Observation.referenceRange[0].text")
    bounds = {
        side: read_quantity(entry[side], f"Observation.referenceRange[0].{side}")[0]
        for side in ("low", "high")
        if side in entry
    }
    if "low" in bounds and "high" in bounds:
        return f"{fmt(bounds['low'])}-{fmt(bounds['high'])}"
    if "low" in bounds:
        return f">={fmt(bounds['low'])}"
    if "high" in bounds:
        return f"<={fmt(bounds['high'])}"
    raise MappingError("a reference range needs low, high or text", "Observation.referenceRange[0]")
