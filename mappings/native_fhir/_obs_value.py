"""``Observation.value[x]`` chosen by the HL7 v2 value type (table 0125), both directions.

| valueType | value[x] |
| --- | --- |
| NM | valueQuantity (UCUM ``system``/``code`` when the units parse) |
| SN | valueQuantity with ``comparator``, valueRange (``low``-``high``), valueRatio (``n:d``) |
| ST, TX, FT | valueString |
| CE, CWE | valueCodeableConcept (system from the HL7 0396 coding-system id) |
| DT, TS | valueDateTime |
| ED | none: the data travels in the ``observation-attachment`` extension |

A value that does not fit its declared type (a non-numeric NM) is sent as valueString and
the type extension is left out, so the reverse mapping reads it as ST.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ._quantity import NUMBER, is_number, quantity, to_number
from ._types import MappingOptions, NativeRecord
from .codes import CODED_TYPES, DATE_TYPES, TEXT_TYPES, ValueType, system_uri

ELEMENT: Final[dict[ValueType, frozenset[str | None]]] = {
    ValueType.NM: frozenset({"valueQuantity"}),
    ValueType.SN: frozenset({"valueQuantity", "valueRange", "valueRatio"}),
    **{t: frozenset({"valueString"}) for t in TEXT_TYPES},
    **{t: frozenset({"valueCodeableConcept"}) for t in CODED_TYPES},
    **{t: frozenset({"valueDateTime"}) for t in DATE_TYPES},
    ValueType.ED: frozenset({None}),
}
"""Which ``value[x]`` each value type may produce (checked again on writes)."""

_SN_CMP = re.compile(rf"^\s*(<=|>=|<|>|=)?\s*({NUMBER})\s*$")
_SN_RANGE = re.compile(rf"^\s*({NUMBER})\s*-\s*({NUMBER})\s*$")
_SN_RATIO = re.compile(rf"^\s*({NUMBER})\s*[:/]\s*({NUMBER})\s*$")
FHIR_DATETIME: Final = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$")


def value_element(record: NativeRecord, options: MappingOptions) -> tuple[str | None, Any]:
    """(``value[x]`` key, value) for a LabResult; (None, None) when there is no value."""
    kind = record.get("valueType")
    data: Mapping[str, Any] = record.get("resultData") or {}
    text = record.get("resultValue")
    units, system = record.get("units"), data.get("unitsSystem")
    if kind == ValueType.ED:
        return None, None
    if kind == ValueType.NM:
        value = data.get("value") if is_number(data.get("value")) else to_number(text or "")
        if value is not None:
            return "valueQuantity", quantity(value, units, system)
    elif kind == ValueType.SN and (sn := _structured(data, text, units, system)) is not None:
        return sn
    elif kind in CODED_TYPES and (data.get("code") or text):
        return "valueCodeableConcept", _concept(data, text, options.system_base)
    elif kind in DATE_TYPES:
        stamp = data.get("dateTime") or text
        if isinstance(stamp, str) and FHIR_DATETIME.match(stamp):
            return "valueDateTime", stamp
    return ("valueString", text) if text else (None, None)


def _structured(
    data: Mapping[str, Any], text: str | None, units: str | None, system: str | None
) -> tuple[str, Any] | None:
    if not any(k in data for k in ("value", "low", "numerator")) and text:
        data = _parse_sn(text)
    if is_number(data.get("value")) and data.get("comparator", "=") in ("<", "<=", ">=", ">", "="):
        cmp = data.get("comparator")
        return "valueQuantity", quantity(data["value"], units, system, None if cmp == "=" else cmp)
    if is_number(data.get("low")) and is_number(data.get("high")):
        low, high = quantity(data["low"], units, system), quantity(data["high"], units, system)
        return "valueRange", {"low": low, "high": high}
    if is_number(data.get("numerator")) and is_number(data.get("denominator")):
        return "valueRatio", {
            "numerator": {"value": data["numerator"]},
            "denominator": {"value": data["denominator"]},
        }
    return None


def _parse_sn(text: str) -> dict[str, Any]:
    """HL7 SN given only as text: ``>182``, ``1-5``, ``1:128``."""
    if match := _SN_CMP.match(text):
        return {"comparator": match.group(1) or "=", "value": to_number(match.group(2))}
    if match := _SN_RANGE.match(text):
        return {"low": to_number(match.group(1)), "high": to_number(match.group(2))}
    if match := _SN_RATIO.match(text):
        return {"numerator": to_number(match.group(1)), "denominator": to_number(match.group(2))}
    return {}


def _concept(data: Mapping[str, Any], text: str | None, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if data.get("code"):
        coding: dict[str, Any] = {}
        if data.get("system"):
            coding["system"] = system_uri(base, data["system"])
        coding["code"] = data["code"]
        if data.get("display"):
            coding["display"] = data["display"]
        out["coding"] = [coding]
    if text or data.get("display"):
        out["text"] = text or data.get("display")
    return out
