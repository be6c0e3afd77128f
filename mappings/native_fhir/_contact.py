"""Native ``contact`` object <-> FHIR ``telecom`` (ContactPoint) and ``address`` (Address).

Native shape: ``{"email", "phone", "mobile", "fax": str, "address": {"line": [str],
"city", "state", "postalCode", "country": str}}``; other keys have no FHIR home and
are not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._datatypes import check_keys, text_value
from ._errors import MappingError

TELECOM: Final[dict[str, tuple[str, str | None]]] = {
    "email": ("email", None),
    "phone": ("phone", None),
    "mobile": ("phone", "mobile"),
    "fax": ("fax", None),
}
"""Native contact key -> (``ContactPoint.system``, ``ContactPoint.use``)."""
_TELECOM_KEY: Final = {v: k for k, v in TELECOM.items()}
ADDRESS_FIELDS: Final = ("city", "state", "postalCode", "country")


def telecom(contact: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """``telecom`` entries, in :data:`TELECOM` order."""
    out: list[dict[str, str]] = []
    for key, (system, use) in TELECOM.items():
        value = (contact or {}).get(key)
        if isinstance(value, str) and value:
            point = {"system": system, "value": value}
            if use:
                point["use"] = use
            out.append(point)
    return out


def address(contact: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """At most one ``Address`` from ``contact.address`` (``line`` may be a string)."""
    raw = (contact or {}).get("address")
    if not isinstance(raw, Mapping):
        return []
    out: dict[str, Any] = {}
    line = raw.get("line")
    lines = [line] if isinstance(line, str) else list(line or [])
    if lines:
        out["line"] = [str(item) for item in lines]
    out.update({k: raw[k] for k in ADDRESS_FIELDS if isinstance(raw.get(k), str) and raw[k]})
    return [out] if out else []


def contact_from(resource: Mapping[str, Any], expression: str) -> dict[str, Any] | None:
    """``telecom`` + ``address`` -> native ``contact`` (``None`` when both are absent)."""
    contact: dict[str, Any] = {}
    for index, point in enumerate(resource.get("telecom") or []):
        where = f"{expression}.telecom[{index}]"
        check_keys(point, {"system", "value", "use"}, where)
        key = _TELECOM_KEY.get((point.get("system"), point.get("use")))
        if key is None or key in contact:
            raise MappingError("only one email, phone, mobile phone and fax can be stored", where)
        contact[key] = text_value(point.get("value"), f"{where}.value")
    addresses = resource.get("address") or []
    if len(addresses) > 1:
        raise MappingError("only one address can be stored", f"{expression}.address[1]")
    if addresses:
        where = f"{expression}.address[0]"
        raw = check_keys(addresses[0], {"line", *ADDRESS_FIELDS}, where)
        stored: dict[str, Any] = {}
        if raw.get("line"):
            stored["line"] = [text_value(x, f"{where}.line") for x in raw["line"]]
        stored.update({k: text_value(raw[k], f"{where}.{k}") for k in ADDRESS_FIELDS if k in raw})
        contact["address"] = stored
    return contact or None
