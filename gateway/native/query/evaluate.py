"""Run an ``ast.Node`` against one record in memory (LiveQuery, tests).

It reads the same typed tree the SQL compiler reads and must agree with it row for
row (the differential test in tests/integration/test_query_sql.py holds both to
that). A record is the store's native shape: field name -> str/int/float/bool/None,
aware datetimes for Dates, objectIds for pointers, lists of objectIds for join
arrays, lists/dicts for JSON fields. Sub-query nodes ask ``resolve`` for the set of
values the sub-query yields (ids for ``$inQuery``/``$relatedTo``, key values for
``$select``), already filtered by the caller's read rights.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from gateway.native.query import ast
from gateway.native.query.ast import CmpOp, FieldKind, FieldRef, Node, Scalar, SubqueryNode
from gateway.native.query.regex import re2_source, search

SubqueryResolver = Callable[[SubqueryNode], Collection[object]]

_MISSING = object()
_OPS: dict[CmpOp, Callable[[Any, Any], bool]] = {
    CmpOp.EQ: operator.eq,
    CmpOp.LT: operator.lt,
    CmpOp.LTE: operator.le,
    CmpOp.GT: operator.gt,
    CmpOp.GTE: operator.ge,
}


def _family(value: object) -> type | None:
    """Mongo compares only within a type: bool is not a number, a string is not a date."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float):
        return float
    if isinstance(value, str | datetime):
        return type(value)
    return None


def _cmp(stored: object, op: CmpOp, value: Scalar) -> bool:
    family = _family(value)
    if family is None or _family(stored) is not family:
        return False
    if family is bool and op is not CmpOp.EQ:
        return False
    return _OPS[op](stored, value)


def _get(record: Mapping[str, object], field: FieldRef) -> object:
    value = record.get(field.name)
    if field.kind is FieldKind.JOIN_ARRAY:
        return value or []
    for key in field.path:
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _elements(value: object) -> list[object] | None:
    if not isinstance(value, list):
        return None
    return [e.get("objectId") if isinstance(e, Mapping) else e for e in value]


def _equal(record: Mapping[str, object], field: FieldRef, value: Scalar) -> bool:
    stored = _get(record, field)
    if field.kind in (FieldKind.JSON_ARRAY, FieldKind.JOIN_ARRAY):
        items = _elements(stored)
        if value is None:
            return stored is None or items == [] if field.kind is FieldKind.JOIN_ARRAY else stored is None
        return items is not None and any(_cmp(e, CmpOp.EQ, value) for e in items)
    if value is None:
        return stored is None or stored is _MISSING
    return _cmp(stored, CmpOp.EQ, value)


def _exists(record: Mapping[str, object], field: FieldRef) -> bool:
    stored = _get(record, field)
    if field.kind is FieldKind.JOIN_ARRAY:
        return bool(stored)
    if field.kind is FieldKind.JSON_PATH:
        return stored is not _MISSING
    return stored is not None


def _array(record: Mapping[str, object], node: ast.All | ast.ContainedBy | ast.ArrayEquals) -> bool:
    items = _elements(_get(record, node.field))
    if items is None:
        return False
    has = [any(_cmp(e, CmpOp.EQ, v) for e in items) for v in node.values]
    if isinstance(node, ast.All):
        return bool(has) and all(has)
    if isinstance(node, ast.ContainedBy):
        return all(any(_cmp(e, CmpOp.EQ, v) for v in node.values) for e in items)
    return len(items) == len(node.values) and all(_cmp(e, CmpOp.EQ, v) for e, v in zip(items, node.values, strict=True))


def _subquery(record: Mapping[str, object], node: SubqueryNode, resolve: SubqueryResolver | None) -> bool:
    if resolve is None:
        raise ValueError("a sub-query needs a resolver")
    found = resolve(node)
    if isinstance(node, ast.RelatedTo):
        return record.get("objectId") in found
    stored = _get(record, node.field)
    if node.field.kind is FieldKind.JOIN_ARRAY:
        hit = any(e in found for e in _elements(stored) or [])
    else:
        hit = stored is not None and stored in found
    return hit if isinstance(node, ast.InQuery | ast.Select) else not hit


def matches(node: Node, record: Mapping[str, object], resolve: SubqueryResolver | None = None) -> bool:
    match node:
        case ast.Const(value=value):
            return value
        case ast.And(children=children):
            return all(matches(c, record, resolve) for c in children)
        case ast.Or(children=children):
            return any(matches(c, record, resolve) for c in children)
        case ast.Nor(children=children):
            return not any(matches(c, record, resolve) for c in children)
        case ast.Compare(field=field, op=CmpOp.EQ, value=value):
            return _equal(record, field, value)
        case ast.Compare(field=field, op=CmpOp.NE, value=value):
            return not _equal(record, field, value)
        case ast.Compare(field=field, op=op, value=value):
            return _cmp(_get(record, field), op, value)
        case ast.In(field=field, values=values):
            return any(_equal(record, field, v) for v in values)
        case ast.NotIn(field=field, values=values):
            return not any(_equal(record, field, v) for v in values)
        case ast.Exists(field=field, exists=want):
            return _exists(record, field) is want
        case ast.All() | ast.ContainedBy() | ast.ArrayEquals():
            return _array(record, node)
        case ast.Regex(field=field, pattern=pattern, flags=flags):
            stored = _get(record, field)
            return isinstance(stored, str) and search(re2_source(pattern, flags), stored)
        case ast.InQuery() | ast.NotInQuery() | ast.Select() | ast.DontSelect() | ast.RelatedTo():
            return _subquery(record, node, resolve)
    raise AssertionError(f"unknown node {node!r}")
