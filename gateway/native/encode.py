"""Records (with included objects) -> Parse JSON, with per-caller hidden fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from gateway.native.codec import encode_record, encode_record_json
from gateway.records.service import Expanded
from gateway.store.classes import CLASSES, ClassSpec

Encoded = dict[str, Any]


def _expand(item: Expanded) -> Encoded:
    """An included object, rendered with its own hidden fields."""
    spec = CLASSES[item.class_name]
    out = encode_record(spec, item.record, hidden=item.hidden, expanded=Expanded, expand=_expand)
    out["__type"] = "Object"
    out["className"] = item.class_name
    return out


def to_json(
    spec: ClassSpec,
    record: Mapping[str, Any],
    *,
    keys: frozenset[str] | None = None,
    hidden: frozenset[str] = frozenset(),
) -> Encoded:
    return encode_record(spec, record, keys=keys, hidden=hidden, expanded=Expanded, expand=_expand)


def _json_expander(seen: dict[tuple[int, frozenset[str]], bytes]) -> Callable[[Expanded], bytes]:
    """Included objects as JSON bytes for ``page_json``; one that several results include (their
    common provider) is encoded once a page."""

    def expand(item: Expanded) -> bytes:
        key = (id(item.record), item.hidden)
        done = seen.get(key)
        if done is not None:
            return done
        spec = CLASSES[item.class_name]
        body = encode_record_json(spec, item.record, hidden=item.hidden, expanded=Expanded, expand_json=expand)
        done = seen[key] = body[:-1] + b',"__type":"Object","className":' + msgspec.json.encode(item.class_name) + b"}"
        return done

    return expand


def page_json(
    spec: ClassSpec,
    records: Sequence[Mapping[str, Any]],
    hidden_of: Callable[[Mapping[str, Any]], frozenset[str]],
    *,
    keys: frozenset[str] | None = None,
) -> list[msgspec.Raw]:
    """A page of results as pre-encoded JSON (``msgspec.Raw``), what ``to_json`` gives once encoded.

    For responses that go straight to the encoder (a find's ``results``): nothing may read
    or change these objects afterwards. The records must stay alive while this runs (ids key
    the included objects shared by several results)."""
    seen: dict[tuple[int, frozenset[str]], bytes] = {}
    expand = _json_expander(seen)
    return [
        msgspec.Raw(encode_record_json(spec, r, keys=keys, hidden=hidden_of(r), expanded=Expanded, expand_json=expand))
        for r in records
    ]
