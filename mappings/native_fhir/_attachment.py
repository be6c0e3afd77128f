"""Native attachment objects <-> FHIR ``Attachment`` (same element names)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._datatypes import check_keys
from ._errors import MappingError

FIELDS: Final = ("contentType", "language", "data", "url", "size", "hash", "title", "creation")
"""``Attachment`` elements; a native attachment keeps exactly these keys."""


def attachment(item: Mapping[str, Any]) -> dict[str, Any]:
    """``Attachment`` from a native ``{"contentType", "data" | "url", "title"}``."""
    return {key: item[key] for key in FIELDS if item.get(key) is not None}


def read_attachment(obj: Any, expression: str) -> dict[str, Any]:
    """Native attachment from an ``Attachment``; one of ``data``/``url`` is required."""
    item = check_keys(obj, FIELDS, expression)
    if "data" not in item and "url" not in item:
        raise MappingError("an attachment needs data or url", expression, code="required")
    return dict(item)
