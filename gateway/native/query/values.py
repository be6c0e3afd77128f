"""Parse JSON values in a query -> the Python values the AST holds, checked per field.

Parse REST encodes dates as ``{"__type": "Date", "iso": ...}`` and pointers as
``{"__type": "Pointer", "className": ..., "objectId": ...}``; the store keeps a
pointer as the bare objectId, so a pointer to another class than the field's
target can never match and decodes to ``NEVER``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Final

from gateway.errors import Invalid, ParseCode
from gateway.native.query.ast import FieldKind, FieldRef, Scalar
from gateway.store.classes import FieldType


class _Never:
    """A value no stored field can equal (a pointer to another class)."""

    def __repr__(self) -> str:
        return "NEVER"


NEVER: Final = _Never()

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SUBKEY = re.compile(r"^[A-Za-z0-9_]+$")


def invalid_query(message: str) -> Invalid:
    return Invalid(message, parse_code=ParseCode.INVALID_QUERY)


def wrong_type(ref: FieldRef, expected: str) -> Invalid:
    return Invalid(f"Invalid value for {ref.dotted}: expected {expected}", parse_code=ParseCode.INCORRECT_TYPE)


def check_key(key: str) -> list[str]:
    """Split a (dotted) key; Parse allows ``^[A-Za-z][A-Za-z0-9_]*`` per field name (105)."""
    parts = key.split(".")
    if not _KEY.match(parts[0]) or not all(_SUBKEY.match(p) for p in parts[1:]):
        raise Invalid(f"Invalid key name: {key}", parse_code=ParseCode.INVALID_KEY_NAME)
    if any(p.isdigit() for p in parts[1:]):
        raise invalid_query(f"Array positions in dot notation are not supported: {key}")
    return parts


def decode_date(raw: object) -> datetime | None:
    """``{"__type": "Date", "iso": ...}`` or a bare ISO string (Parse's ``valueAsDate``)."""
    if isinstance(raw, dict) and raw.get("__type") == "Date":
        raw = raw.get("iso")
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pointer(raw: object, target: str | None, ref: FieldRef | None) -> str | _Never:
    if isinstance(raw, str):
        return raw  # a bare objectId: a convenience the FHIR door uses
    if (
        isinstance(raw, dict)
        and raw.get("__type") == "Pointer"
        and isinstance(raw.get("className"), str)
        and isinstance(raw.get("objectId"), str)
    ):
        return raw["objectId"] if target is None or raw["className"] == target else NEVER
    if ref is None:
        raise invalid_query("Invalid Pointer value")
    raise wrong_type(ref, f"a Pointer to {target}")


def _plain(raw: object) -> bool:
    if isinstance(raw, float) and not math.isfinite(raw):
        return False
    return isinstance(raw, str | int | float | bool)


def decode_any(raw: object) -> Scalar | _Never:
    """A value compared with a field the schema does not know (it still has to be well formed)."""
    if _plain(raw):
        return raw  # type: ignore[return-value]
    if isinstance(raw, dict) and raw.get("__type") == "Date":
        value = decode_date(raw)
        if value is None:
            raise invalid_query("Invalid Date value")
        return value
    if isinstance(raw, dict) and raw.get("__type") == "Pointer":
        return _pointer(raw, None, None)
    raise invalid_query(f"Unsupported query value: {raw!r:.80}")


def decode(ref: FieldRef, raw: object) -> Scalar | _Never:
    """One non-null value for ``ref``; for arrays this is one element. Mismatch -> 111."""
    kind, ftype = ref.kind, ref.spec.type
    if isinstance(raw, dict) and raw.get("__type") not in (None, "Date", "Pointer"):
        raise invalid_query(f"{raw.get('__type')} values are not supported in queries")
    if kind is FieldKind.JOIN_ARRAY or ftype is FieldType.POINTER:
        return _pointer(raw, ref.spec.target, ref)
    if kind in (FieldKind.JSON_PATH, FieldKind.JSON_ARRAY):
        if not _plain(raw):
            raise wrong_type(ref, "a string, number or boolean")
        return raw  # type: ignore[return-value]
    if kind is FieldKind.OBJECT:
        raise invalid_query(f"Compare values inside {ref.name} with dot notation")
    if ftype is FieldType.DATE:
        value = decode_date(raw)
        if value is None:
            raise wrong_type(ref, "a Date")
        return value
    if ftype is FieldType.STRING and isinstance(raw, str):
        return raw
    if ftype is FieldType.BOOLEAN and isinstance(raw, bool):
        return raw
    if ftype is FieldType.NUMBER and _plain(raw) and isinstance(raw, int | float) and not isinstance(raw, bool):
        return raw
    raise wrong_type(ref, f"a {ftype.value}")
