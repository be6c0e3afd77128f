"""Records (with included objects) -> Parse JSON, with per-caller hidden fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.native.codec import encode_record
from gateway.records.service import Expanded
from gateway.store.classes import CLASSES, ClassSpec


def _expanded_json(item: Expanded) -> dict[str, Any]:
    spec = CLASSES[item.class_name]
    out = to_json(spec, item.record, hidden=item.hidden)
    out["__type"] = "Object"
    out["className"] = item.class_name
    return out


def to_json(
    spec: ClassSpec,
    record: Mapping[str, Any],
    *,
    keys: frozenset[str] | None = None,
    hidden: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    return encode_record(spec, record, keys=keys, hidden=hidden, expanded=Expanded, expand=_expanded_json)
