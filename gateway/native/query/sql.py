"""``ast.Node`` -> a SQLAlchemy predicate over ``spec.table`` (and ``order`` -> ORDER BY).

Each node compiles to a two-valued predicate (never SQL NULL): a column test is
guarded with ``IS NOT NULL``, so ``NOT`` gives Mongo's meaning (``$ne``/``$nin``
match null fields) instead of SQL's three-valued one. Sub-queries (``$inQuery``,
``$select``, ``$relatedTo``) AND in the caller's read predicate for the other
class, so a sub-query never sees a row the caller could not read itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, exists, literal, not_, or_, select
from sqlalchemy import Select as SQLSelect

from gateway.native.query import ast
from gateway.native.query.ast import CmpOp, FieldKind, FieldRef, Node
from gateway.native.query.jsonsql import (
    JsonPath,
    apply_op,
    array_contained_by,
    array_contains_all,
    array_contains_any,
    array_equals,
    binary_text,
    json_present,
    regex_op,
)
from gateway.native.query.options import OrderKey
from gateway.native.query.regex import re2_source, to_postgres
from gateway.store.classes import CLASSES, ClassSpec, FieldType


@dataclass(frozen=True, slots=True)
class CompileContext:
    dialect: str
    """``"sqlite"`` or ``"postgresql"``."""
    subquery_filter: Callable[[ClassSpec], ColumnElement[bool]]
    """Read predicate (ACL) for rows of a class a sub-query reads; may raise NotFound/Forbidden."""


def compile_where(node: Node, spec: ClassSpec, ctx: CompileContext) -> ColumnElement[bool]:
    return _Compiler(ctx).node(node, spec)


def compile_order(keys: list[OrderKey], spec: ClassSpec) -> list[ColumnElement[Any]]:
    """Mongo order: nulls first ascending; strings in code-point order; objectId breaks ties."""
    out: list[ColumnElement[Any]] = []
    for key in keys:
        col: ColumnElement[Any] = key.field.column  # type: ignore[assignment]
        if key.field.type in (FieldType.STRING, FieldType.POINTER):
            col = binary_text(col)
        out.append(col.desc().nulls_last() if key.descending else col.asc().nulls_first())
    if not any(k.field.name == "objectId" for k in keys):
        out.append(spec.pk.asc())
    return out


_FALSE = literal(False, Boolean())


class _Compiler:
    def __init__(self, ctx: CompileContext) -> None:
        self.ctx = ctx
        self.pg = ctx.dialect == "postgresql"

    def node(self, node: Node, spec: ClassSpec) -> ColumnElement[bool]:
        match node:
            case ast.Const(value=value):
                return literal(value, Boolean())
            case ast.And(children=children):
                return and_(*(self.node(c, spec) for c in children))
            case ast.Or(children=children):
                return or_(*(self.node(c, spec) for c in children))
            case ast.Nor(children=children):
                return not_(or_(*(self.node(c, spec) for c in children)))
            case ast.Compare():
                return self.compare(node, spec)
            case ast.In(field=field, values=values):
                return self.in_(field, values, spec)
            case ast.NotIn(field=field, values=values):
                return not_(self.in_(field, values, spec))
            case ast.Exists(field=field, exists=want):
                present = self.exists(field, spec)
                return present if want else not_(present)
            case ast.All() | ast.ContainedBy() | ast.ArrayEquals():
                return self.array(node, spec)
            case ast.Regex(field=field, pattern=pattern, flags=flags):
                source = to_postgres(pattern, flags) if self.pg else re2_source(pattern, flags)
                if field.kind is FieldKind.JSON_PATH:
                    return self._path(field).regex(source)
                return and_(self._col(field).is_not(None), regex_op(self._col(field), source, self.pg))
            case ast.InQuery() | ast.NotInQuery() | ast.Select() | ast.DontSelect() | ast.RelatedTo():
                return self.subquery(node, spec)
        raise AssertionError(f"unknown node {node!r}")

    # ------------------------------------------------------------ fields

    @staticmethod
    def _col(field: FieldRef) -> ColumnElement[Any]:
        assert field.spec.column is not None
        return field.spec.column

    def _path(self, field: FieldRef) -> JsonPath:
        return JsonPath(self._col(field), field.path, self.ctx.dialect)

    def _join_exists(self, field: FieldRef, spec: ClassSpec, test: ColumnElement[bool] | None) -> ColumnElement[bool]:
        join = field.spec.join
        assert join is not None
        cond = join.owning == spec.pk
        query = select(literal(1)).select_from(join.table).where(cond if test is None else and_(cond, test))
        return exists(query.correlate(spec.table))

    def exists(self, field: FieldRef, spec: ClassSpec) -> ColumnElement[bool]:
        if field.kind is FieldKind.JSON_PATH:
            return self._path(field).exists()
        if field.kind is FieldKind.JOIN_ARRAY:
            return self._join_exists(field, spec, None)
        if field.kind in (FieldKind.JSON_ARRAY, FieldKind.OBJECT):
            return json_present(self._col(field), self.ctx.dialect)
        return self._col(field).is_not(None)

    def compare(self, node: ast.Compare, spec: ClassSpec) -> ColumnElement[bool]:
        field, op, value = node.field, node.op, node.value
        if op is CmpOp.NE:
            return not_(self.compare(ast.Compare(field, CmpOp.EQ, value), spec))
        if value is None:
            if field.kind is FieldKind.JSON_PATH:
                return self._path(field).is_null()
            return not_(self.exists(field, spec))
        if field.kind is FieldKind.JSON_PATH:
            return self._path(field).compare(op, value)  # type: ignore[arg-type]
        if field.kind in (FieldKind.JSON_ARRAY, FieldKind.JOIN_ARRAY):
            return self.in_(field, (value,), spec)
        col = self._col(field)
        if op is not CmpOp.EQ and field.spec.type is FieldType.STRING:
            col = binary_text(col)
        return and_(self._col(field).is_not(None), apply_op(col, op, value))

    def in_(self, field: FieldRef, values: tuple[ast.Scalar, ...], spec: ClassSpec) -> ColumnElement[bool]:
        present = [v for v in values if v is not None]
        tests: list[ColumnElement[bool]] = []
        if len(present) < len(values):
            tests.append(self.compare(ast.Compare(field, CmpOp.EQ, None), spec))
        if present:
            if field.kind is FieldKind.JSON_PATH:
                path = self._path(field)
                tests.extend(path.compare(CmpOp.EQ, v) for v in present)  # type: ignore[arg-type]
            elif field.kind is FieldKind.JSON_ARRAY:
                tests.append(array_contains_any(self._col(field), tuple(present), self.ctx.dialect))  # type: ignore[arg-type]
            elif field.kind is FieldKind.JOIN_ARRAY:
                assert field.spec.join is not None
                tests.append(self._join_exists(field, spec, field.spec.join.related.in_(present)))
            else:
                col = self._col(field)
                tests.append(and_(col.is_not(None), col.in_(present)))
        return or_(*tests) if tests else _FALSE

    def array(self, node: ast.All | ast.ContainedBy | ast.ArrayEquals, spec: ClassSpec) -> ColumnElement[bool]:
        field, values = node.field, node.values
        if field.kind is FieldKind.JOIN_ARRAY:
            join = field.spec.join
            assert join is not None
            if isinstance(node, ast.All):
                return and_(*(self._join_exists(field, spec, join.related == v) for v in values))
            if isinstance(node, ast.ContainedBy):
                return not_(self._join_exists(field, spec, join.related.not_in(values)))
            raise AssertionError("whole-array equality on a join field is refused by the parser")
        col, dialect = self._col(field), self.ctx.dialect
        if isinstance(node, ast.All):
            return array_contains_all(col, values, dialect)  # type: ignore[arg-type]
        if isinstance(node, ast.ContainedBy):
            return array_contained_by(col, values, dialect)  # type: ignore[arg-type]
        return array_equals(col, values, dialect)  # type: ignore[arg-type]

    # ------------------------------------------------------------ sub-queries

    def _sub(self, class_name: str, where: Node, column: ColumnElement[Any] | None = None) -> SQLSelect[Any]:
        sub = CLASSES[class_name]
        col = sub.pk if column is None else column
        cond = and_(self.node(where, sub), self.ctx.subquery_filter(sub), col.is_not(None))
        # correlate(None): the sub-query may read the outer query's own table; it must not
        # be folded into the outer FROM.
        return select(col).where(cond).correlate(None)

    def subquery(self, node: ast.SubqueryNode, spec: ClassSpec) -> ColumnElement[bool]:
        if isinstance(node, ast.RelatedTo):
            owner = CLASSES[node.owner]
            join = node.key.join
            assert join is not None
            related = (
                select(join.related)
                .select_from(join.table.join(owner.table, join.owning == owner.pk))
                .where(join.owning == node.object_id, self.ctx.subquery_filter(owner))
                .correlate(None)
            )
            return spec.pk.in_(related)
        if isinstance(node, ast.InQuery | ast.NotInQuery):
            ids = self._sub(node.class_name, node.where)
            if node.field.kind is FieldKind.JOIN_ARRAY:
                assert node.field.spec.join is not None
                hit = self._join_exists(node.field, spec, node.field.spec.join.related.in_(ids))
            else:
                hit = and_(self._col(node.field).is_not(None), self._col(node.field).in_(ids))
            return hit if isinstance(node, ast.InQuery) else not_(hit)
        values = self._sub(node.class_name, node.where, node.key.column)
        col = self._col(node.field)
        hit = and_(col.is_not(None), col.in_(values))
        return hit if isinstance(node, ast.Select) else not_(hit)
