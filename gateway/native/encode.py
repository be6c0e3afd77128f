"""Records (with included objects) -> Parse JSON, with per-caller hidden fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.native.codec import encode_record
from gateway.records.service import Expanded
from gateway.store.classes import CLASSES, ClassSpec

Encoded = dict[str, Any]


def _expander(seen: dict[tuple[int, frozenset[str]], Encoded] | None) -> Callable[[Expanded], Encoded]:
    """Renders included objects. With ``seen`` (one page's worth), an object that several results
    include (their common provider) is encoded once and the same JSON object shared."""

    def expand(item: Expanded) -> Encoded:
        key = (id(item.record), item.hidden)
        if seen is not None:
            done = seen.get(key)
            if done is not None:
                return done
        spec = CLASSES[item.class_name]
        out = encode_record(spec, item.record, hidden=item.hidden, expanded=Expanded, expand=expand)
        out["__type"] = "Object"
        out["className"] = item.class_name
        if seen is not None:
            seen[key] = out
        return out

    return expand


_EXPAND = _expander(None)


def to_json(
    spec: ClassSpec,
    record: Mapping[str, Any],
    *,
    keys: frozenset[str] | None = None,
    hidden: frozenset[str] = frozenset(),
    seen: dict[tuple[int, frozenset[str]], Encoded] | None = None,
) -> Encoded:
    """``seen``: pass one dict for all records of a page (see ``_expander``); the records must stay
    alive while it is used, as ids key it."""
    expand = _EXPAND if seen is None else _expander(seen)
    return encode_record(spec, record, keys=keys, hidden=hidden, expanded=Expanded, expand=expand)
