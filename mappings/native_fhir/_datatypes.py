"""FHIR datatypes both directions: instants, ``meta``, ``Reference``, ``Extension``, key checks.

Timestamps are written in UTC with a ``Z`` suffix (``2024-03-01T10:15:00Z``, fractional
seconds only when present, as six digits), the form fhir.resources also emits, so a validated dump of
our output equals our output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ._errors import MappingError
from ._types import MappingOptions, NativeRecord
from .codes import EXT_PREFIX, Ext, local_uri

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def instant(value: datetime) -> str:
    """FHIR ``instant``/``dateTime`` in UTC with ``Z`` (naive values are taken as UTC)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")


def parse_instant(value: Any, expression: str) -> datetime:
    """A full FHIR ``dateTime`` with seconds and zone -> aware UTC ``datetime``.

    Partial dates (``2024``, ``2024-03-01``) would gain a precision they do not have, so
    they are refused rather than padded.
    """
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise MappingError("expected a dateTime with seconds and a time zone", expression)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def is_full_date(value: Any) -> bool:
    """``YYYY-MM-DD`` (the only ``date`` precision ``PatientProfile.dateOfBirth`` keeps)."""
    return isinstance(value, str) and bool(_DATE.match(value))


def meta(record: NativeRecord) -> dict[str, Any]:
    """``Resource.meta``: ``versionId`` = native ``version``, ``lastUpdated`` = ``updatedAt``."""
    out: dict[str, Any] = {"versionId": str(record.get("version") or 1)}
    if record.get("updatedAt") is not None:
        out["lastUpdated"] = instant(record["updatedAt"])
    return out


def ref(resource_type: str, object_id: str) -> dict[str, str]:
    """A literal ``Reference``: ``{"reference": "Type/id"}``."""
    return {"reference": f"{resource_type}/{object_id}"}


def parse_ref(value: Any, allowed: Iterable[str], expression: str, options: MappingOptions) -> tuple[str, str]:
    """``Reference`` -> (type, id); the type must be one of ``allowed``.

    Relative ``Type/id`` is accepted, and an absolute URL under ``options.base_url``.
    Logical (identifier-only) and contained references are refused.
    """
    if not isinstance(value, Mapping):
        raise MappingError("expected a Reference", expression)
    check_keys(value, {"reference", "type", "display"}, expression)
    text = value.get("reference")
    if not isinstance(text, str):
        raise MappingError("only literal references (Type/id) can be stored", expression)
    if options.base_url and text.startswith(options.base_url.rstrip("/") + "/"):
        text = text[len(options.base_url.rstrip("/")) + 1 :]
    parts = text.split("/")
    kinds = tuple(allowed)
    if len(parts) != 2 or not _ID.match(parts[1]):
        raise MappingError(f"expected a reference to {' or '.join(kinds)}/<id>", expression)
    if parts[0] not in kinds or value.get("type", parts[0]) != parts[0]:
        raise MappingError(
            f"reference must point to {' or '.join(kinds)}, not {parts[0]}",
            expression,
            code="invalid",
        )
    return parts[0], parts[1]


def check_keys(obj: Any, allowed: Iterable[str], expression: str) -> Mapping[str, Any]:
    """Refuse any element we would otherwise drop; returns ``obj`` typed as a mapping."""
    if not isinstance(obj, Mapping):
        raise MappingError("expected a JSON object", expression)
    allowed_set = set(allowed)
    for key in obj:
        if key not in allowed_set:
            raise MappingError(
                f"element '{key}' is not supported by this server",
                f"{expression}.{key}",
                code="not-supported",
            )
    return obj


def check_resource(resource: Mapping[str, Any], resource_type: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    """Top-level checks: ``resourceType``, supported elements, server-managed ``meta``."""
    if resource.get("resourceType") != resource_type:
        raise MappingError(f"expected resourceType {resource_type}", resource_type)
    check_keys(resource, {"resourceType", "id", "meta", *allowed}, resource_type)
    if "meta" in resource:
        check_keys(resource["meta"], {"versionId", "lastUpdated", "security"}, f"{resource_type}.meta")
        if "security" in resource["meta"] and "security" not in set(allowed):
            raise MappingError(
                "security labels are not supported", f"{resource_type}.meta.security", code="not-supported"
            )
    return resource


def text_value(value: Any, expression: str) -> str:
    """A FHIR ``string``/``markdown`` element."""
    if not isinstance(value, str):
        raise MappingError("expected a string", expression)
    return value


def ext(options: MappingOptions, which: Ext, value_key: str, value: Any) -> dict[str, Any]:
    """One of our extensions (see :class:`.codes.Ext`)."""
    return {"url": local_uri(options.system_base, EXT_PREFIX + which.value), value_key: value}


def read_extensions(
    resource: Mapping[str, Any], expression: str, options: MappingOptions, known: dict[Ext, str]
) -> dict[Ext, list[Any]]:
    """Our extensions by name (``known`` gives each one's ``value[x]`` key); others refused."""
    found: dict[Ext, list[Any]] = {}
    by_url = {local_uri(options.system_base, EXT_PREFIX + e.value): e for e in known}
    items = resource.get("extension", [])
    if not isinstance(items, list):
        raise MappingError("expected a list", f"{expression}.extension")
    for index, item in enumerate(items):
        where = f"{expression}.extension[{index}]"
        url = item.get("url") if isinstance(item, Mapping) else None
        if url not in by_url:
            raise MappingError(f"extension {url!r} is not supported", where, code="not-supported")
        which = by_url[url]
        check_keys(item, {"url", known[which]}, where)
        if known[which] not in item:
            raise MappingError(f"expected {known[which]}", where)
        found.setdefault(which, []).append(item[known[which]])
    return found


def user_ref(user_refs: Mapping[str, str], user_id: str | None) -> dict[str, str] | None:
    """``Reference`` for a ``_User`` through the server-resolved ``user_refs`` (else ``None``)."""
    if user_id is None or user_id not in user_refs:
        return None
    return {"reference": user_refs[user_id]}


def ref_user(
    user_refs: Mapping[str, str], value: Any, allowed: Iterable[str], expression: str, options: MappingOptions
) -> str:
    """The ``_User`` id behind a Patient/Practitioner reference (inverse of ``user_refs``)."""
    kind, object_id = parse_ref(value, allowed, expression, options)
    wanted = f"{kind}/{object_id}"
    for user_id, target in user_refs.items():
        if target == wanted:
            return user_id
    raise MappingError(f"{wanted} has no portal account", expression, code="not-found")


def period(start: datetime | None, end: datetime | None) -> dict[str, str]:
    """``Period`` (empty when both ends are unknown)."""
    out = {}
    if start is not None:
        out["start"] = instant(start)
    if end is not None:
        out["end"] = instant(end)
    return out


def read_period(value: Any, expression: str) -> tuple[datetime | None, datetime | None]:
    """``Period`` -> (start, end)."""
    if value is None:
        return None, None
    item = check_keys(value, {"start", "end"}, expression)
    start, end = item.get("start"), item.get("end")
    return (
        None if start is None else parse_instant(start, f"{expression}.start"),
        None if end is None else parse_instant(end, f"{expression}.end"),
    )


def optional_text(value: Any, expression: str) -> str | None:
    """An optional FHIR ``string``."""
    return None if value is None else text_value(value, expression)


def single_datetime(values: list[Any] | None, expression: str) -> datetime | None:
    """At most one ``valueDateTime`` of an extension."""
    if not values:
        return None
    if len(values) > 1:
        raise MappingError("only one value can be stored", expression)
    return parse_instant(values[0], expression)
