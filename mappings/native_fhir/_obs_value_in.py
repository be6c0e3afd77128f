"""Reverse of :mod:`._obs_value`: ``Observation.value[x]`` -> LabResult value fields.

Produces ``valueType``, ``resultValue``, ``units`` and ``resultData``. The declared type (our
``hl7v2-value-type`` extension) is honoured when it fits the ``value[x]`` present; without it
the type is inferred (Quantity -> NM, or SN with a comparator; Range/Ratio -> SN; string ->
ST; CodeableConcept -> CWE; dateTime -> TS, or DT for a bare date; no value -> none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._datatypes import check_keys, text_value
from ._errors import MappingError
from ._obs_value import ELEMENT, FHIR_DATETIME
from ._quantity import fmt, is_number, read_quantity
from ._types import MappingOptions
from .codes import ValueType, system_id

VALUE_KEYS: Final = (
    "valueQuantity", "valueString", "valueCodeableConcept", "valueRange", "valueRatio", "valueDateTime",
)  # fmt: skip


def read_value(resource: Mapping[str, Any], declared: str | None, options: MappingOptions) -> dict[str, Any]:
    """The four LabResult value fields; raises :class:`MappingError` on a lossy value."""
    present = [key for key in VALUE_KEYS if key in resource]
    if len(present) > 1:
        raise MappingError("only one value[x] is allowed", f"Observation.{present[1]}")
    key = present[0] if present else None
    if declared is not None:
        if declared not in ValueType.__members__:
            raise MappingError(f"unknown HL7 value type {declared!r}", "Observation.extension")
        if key not in ELEMENT[ValueType(declared)]:
            raise MappingError(f"value type {declared} cannot carry {key}", "Observation.extension")
    where = f"Observation.{key}"
    value = resource.get(key) if key else None
    if key == "valueQuantity":
        return _quantity(value, declared, where)
    if key == "valueRange":
        rng = check_keys(value, {"low", "high"}, where)
        if "low" not in rng or "high" not in rng:
            raise MappingError("a range needs low and high", where, code="required")
        low, lu, _ = read_quantity(rng["low"], f"{where}.low")
        high, hu, _ = read_quantity(rng["high"], f"{where}.high")
        if lu != hu:
            raise MappingError("low and high must share one unit", f"{where}.high.unit")
        data = {"low": low, "high": high}
        return _fields("SN", f"{fmt(low)}-{fmt(high)}", lu, data)
    if key == "valueRatio":
        ratio = check_keys(value, {"numerator", "denominator"}, where)
        parts = [_bare_number(ratio.get(p), f"{where}.{p}") for p in ("numerator", "denominator")]
        data = {"numerator": parts[0], "denominator": parts[1]}
        return _fields("SN", f"{fmt(parts[0])}:{fmt(parts[1])}", None, data)
    if key == "valueString":
        return _fields(declared or "ST", text_value(value, where), None, None)
    if key == "valueCodeableConcept":
        return _concept(value, declared, where, options)
    if key == "valueDateTime":
        if not isinstance(value, str) or not FHIR_DATETIME.match(value):
            raise MappingError("expected a FHIR dateTime", where)
        kind = declared or ("TS" if "T" in value else "DT")
        return _fields(kind, value, None, {"dateTime": value})
    return _fields(declared, None, None, None)


def _fields(kind: str | None, text: str | None, units: str | None, data: Any) -> dict[str, Any]:
    return {"valueType": kind, "resultValue": text, "units": units, "resultData": data}


def _quantity(value: Any, declared: str | None, where: str) -> dict[str, Any]:
    number, units, cmp = read_quantity(value, where, comparator=True)
    if cmp is not None:
        if declared == ValueType.NM:
            raise MappingError("an NM value cannot have a comparator", f"{where}.comparator")
        return _fields("SN", f"{cmp}{fmt(number)}", units, {"comparator": cmp, "value": number})
    return _fields(declared or "NM", fmt(number), units, {"value": number})


def _bare_number(obj: Any, where: str) -> int | float:
    part = check_keys(obj, {"value"}, where)
    if not is_number(part.get("value")):
        raise MappingError("expected a unitless numeric value", f"{where}.value")
    number: int | float = part["value"]
    return number


def _concept(value: Any, declared: str | None, where: str, options: MappingOptions) -> dict[str, Any]:
    concept = check_keys(value, {"coding", "text"}, where)
    codings = concept.get("coding") or []
    if len(codings) > 1:
        raise MappingError("only one coding can be stored", f"{where}.coding[1]")
    data: dict[str, Any] = {}
    if codings:
        coding = check_keys(codings[0], {"system", "code", "display"}, f"{where}.coding[0]")
        data["code"] = text_value(coding.get("code"), f"{where}.coding[0].code")
        if "display" in coding:
            data["display"] = text_value(coding["display"], f"{where}.coding[0].display")
        if "system" in coding:
            sid = system_id(options.system_base, coding["system"])
            if sid is None:
                raise MappingError(f"unknown code system {coding['system']!r}", f"{where}.coding[0].system")
            data["system"] = sid
    text = concept.get("text")
    if text is None and not codings:
        raise MappingError("a coded value needs a coding or text", where, code="required")
    text = text_value(text, f"{where}.text") if text is not None else data.get("display") or data["code"]
    return _fields(declared or "CWE", text, None, data or None)
