"""Numbers and ``Quantity`` (with UCUM ``system``/``code`` when the units parse as UCUM)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, TypeGuard

from ._datatypes import check_keys
from ._errors import MappingError
from ._ucum import ucum_code
from .codes import UCUM

NUMBER: Final = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER = re.compile(rf"^\s*({NUMBER})\s*$")
Number = int | float


def to_number(text: str) -> Number | None:
    """``"5"`` -> 5, ``"5.4"`` -> 5.4; anything else -> ``None``."""
    match = _NUMBER.match(text)
    if match is None:
        return None
    raw = match.group(1)
    return float(raw) if any(ch in raw for ch in ".eE") else int(raw)


def is_number(value: Any) -> TypeGuard[Number]:
    """A JSON number (``bool`` is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def fmt(value: Number) -> str:
    """Native string form of a number (``resultValue``)."""
    return repr(value) if isinstance(value, float) else str(value)


def quantity(
    value: Number, units: str | None, units_system: str | None = None, comparator: str | None = None
) -> dict[str, Any]:
    """``Quantity``; ``system``/``code`` only when ``units`` is (or translates to) UCUM and the
    sender did not declare another units system."""
    out: dict[str, Any] = {"value": value}
    if comparator:
        out["comparator"] = comparator
    if units:
        out["unit"] = units
        code = ucum_code(units) if units_system in (None, "UCUM") else None
        if code is not None:
            out["system"] = UCUM
            out["code"] = code
    return out


def read_quantity(obj: Any, expression: str, *, comparator: bool = False) -> tuple[Number, str | None, str | None]:
    """``Quantity`` -> (value, units, comparator); refuses a ``code`` we would not rebuild."""
    keys = {"value", "unit", "system", "code"} | ({"comparator"} if comparator else set())
    q = check_keys(obj, keys, expression)
    value = q.get("value")
    if not is_number(value):
        raise MappingError("expected a numeric value", f"{expression}.value")
    number = value
    units = _units(q, expression)
    cmp = q.get("comparator")
    if cmp is not None and cmp not in ("<", "<=", ">=", ">"):
        raise MappingError(f"unknown comparator {cmp!r}", f"{expression}.comparator", code="code-invalid")
    return number, units, None if cmp is None else str(cmp)


def _units(q: Mapping[str, Any], expression: str) -> str | None:
    unit, system, code = q.get("unit"), q.get("system"), q.get("code")
    if system is not None and system != UCUM:
        raise MappingError(f"only UCUM units ({UCUM}) can be stored", f"{expression}.system")
    units = unit if unit is not None else code
    if code is not None and (system is None or ucum_code(units) != code):
        raise MappingError(f"UCUM code {code!r} does not match unit {units!r}", f"{expression}.code", code="value")
    return units if isinstance(units, str) else None
