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
    if not any(
        isinstance(v, Expanded) or (isinstance(v, list) and v and isinstance(v[0], Expanded)) for v in record.values()
    ):
        return encode_record(spec, record, keys=keys, hidden=hidden)
    plain = {k: (v.record["objectId"] if isinstance(v, Expanded) else v) for k, v in record.items()}
    for k, v in plain.items():
        if isinstance(v, list) and any(isinstance(i, Expanded) for i in v):
            plain[k] = [i.record["objectId"] if isinstance(i, Expanded) else i for i in v]
    out = encode_record(spec, plain, keys=keys, hidden=hidden)
    for name, value in record.items():
        if name not in out:
            continue
        if isinstance(value, Expanded):
            out[name] = _expanded_json(value)
        elif isinstance(value, list) and any(isinstance(i, Expanded) for i in value):
            out[name] = [
                _expanded_json(i) if isinstance(i, Expanded) else o for i, o in zip(value, out[name], strict=True)
            ]
    return out
