"""The other find options that name fields: ``order``, ``keys`` and ``include``."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import Forbidden
from gateway.native.query.values import check_key, invalid_query
from gateway.store.classes import CLASSES, ClassSpec, FieldSpec, FieldType

IncludeTree = dict[str, "IncludeTree"]
"""Pointer field -> what to include inside the object it points to."""

_ORDER_ALIASES = {"_created_at": "createdAt", "_updated_at": "updatedAt"}
_UNORDERABLE = (FieldType.ARRAY, FieldType.OBJECT, FieldType.RELATION, FieldType.ACL)


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: FieldSpec
    descending: bool = False


def parse_order(spec: ClassSpec, order: str, protected: frozenset[str] = frozenset()) -> list[OrderKey]:
    """``order=-createdAt,testName``. Unknown fields sort as all-undefined, so they are dropped."""
    keys: list[OrderKey] = []
    seen: set[str] = set()
    for token in (t.strip() for t in order.split(",")):
        if not token:
            continue
        descending = token.startswith("-")
        name = _ORDER_ALIASES.get(token.lstrip("-"), token.lstrip("-"))
        if name == "$score":
            raise invalid_query("$score ordering needs $text, which is not supported")
        parts = check_key(name)
        if len(parts) > 1:
            raise invalid_query(f"Cannot sort by a sub-field: {name}")
        if name in protected:
            raise Forbidden(f"This user is not allowed to sort by {name} on class {spec.name}")
        fspec = spec.fields.get(name)
        if fspec is None or name in seen:
            continue
        if fspec.column is None or fspec.type in _UNORDERABLE:
            raise invalid_query(f"Cannot sort by {name}")
        seen.add(name)
        keys.append(OrderKey(fspec, descending))
    return keys


def parse_keys(spec: ClassSpec, keys: str) -> frozenset[str]:
    """``keys=a,b.c``: the top-level fields to return (dotted keys select inside includes)."""
    names: set[str] = set()
    for token in (t.strip() for t in keys.split(",")):
        if token:
            names.add(check_key(token)[0])
    return frozenset(names)


def _pointer_like(fspec: FieldSpec) -> bool:
    return fspec.target is not None and fspec.type in (FieldType.POINTER, FieldType.ARRAY)


def parse_include(
    spec: ClassSpec, include: str, max_depth: int, *, protected: frozenset[str] = frozenset()
) -> IncludeTree:
    """``include=patient.user,orderedBy`` -> ``{"patient": {"user": {}}, "orderedBy": {}}``.

    Each hop must be a Pointer (or pointer Array) field; ``*`` means every such
    field at that level. As Parse Server does, a hop that names no pointer
    (unknown, a plain field, or protected) is skipped rather than refused.
    """
    tree: IncludeTree = {}
    for token in (t.strip() for t in include.split(",")):
        if not token:
            continue
        parts = token.split(".")
        if len(parts) > max_depth:
            raise invalid_query(f"include {token} is deeper than the limit of {max_depth} levels")
        _add(tree, spec, parts, protected)
    return tree


def _add(tree: IncludeTree, spec: ClassSpec, parts: list[str], protected: frozenset[str]) -> None:
    head, rest = parts[0], parts[1:]
    if head == "*":
        names = [n for n, f in spec.fields.items() if _pointer_like(f) and n not in protected]
    else:
        check_key(head)
        fspec = spec.fields.get(head)
        names = [head] if fspec is not None and _pointer_like(fspec) and head not in protected else []
    for name in names:
        subtree = tree.setdefault(name, {})
        target = CLASSES.get(spec.fields[name].target or "")
        if rest and target is not None:
            _add(subtree, target, rest, frozenset())
