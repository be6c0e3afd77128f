"""Dialect-specific SQL for values inside JSON columns (Object sub-paths, JSON arrays).

Every helper returns a *two-valued* predicate (never SQL NULL), so the compiler can
negate it with plain ``NOT`` and keep Mongo's "``$ne`` matches missing" meaning.
Comparisons are type-strict as in Mongo: the string ``"1"`` never equals the number
``1``, and ``true`` is not ``1``. SQLite reads JSON with ``json_type``/``json_extract``/
``json_each``; PostgreSQL with ``jsonb`` functions and the ``@>``/``<@`` operators.
All values, paths included, are bound parameters.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from gateway.native.query.ast import CmpOp

JsonScalar = str | int | float | bool

_PG_TYPE = {str: "string", int: "number", float: "number", bool: "boolean"}
_SQLITE_TYPES = {str: ("text",), int: ("integer", "real"), float: ("integer", "real")}


class binary_text(FunctionElement[str]):
    """A text expression compared in code-point order: ``COLLATE "C"`` on PostgreSQL
    (database collations order by locale), unchanged on SQLite (BINARY already)."""

    inherit_cache = True
    type = String()


@compiles(binary_text)
def _binary_text(element: binary_text, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(next(iter(element.clauses)), **kw))


@compiles(binary_text, "postgresql")
def _binary_text_pg(element: binary_text, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(next(iter(element.clauses)), **kw)} COLLATE "C")'


_SQL_OPS = {CmpOp.EQ: "=", CmpOp.LT: "<", CmpOp.LTE: "<=", CmpOp.GT: ">", CmpOp.GTE: ">="}


def apply_op(left: ColumnElement[Any], op: CmpOp, right: Any) -> ColumnElement[bool]:
    return left.op(_SQL_OPS[op], is_comparison=True)(right)


def _pg_json(value: object) -> ColumnElement[Any]:
    return cast(bindparam(None, json.dumps(value), type_=String()), JSONB)


class JsonPath:
    """A value inside an Object column at ``path``; missing and JSON null are distinct."""

    def __init__(self, column: ColumnElement[Any], path: tuple[str, ...], dialect: str) -> None:
        self.pg = dialect == "postgresql"
        if self.pg:
            keys = [bindparam(None, p, type_=String()) for p in path]
            self.value: ColumnElement[Any] = func.jsonb_extract_path(column, *keys)
            self.text: ColumnElement[Any] = func.jsonb_extract_path_text(column, *keys)
            self.type: ColumnElement[Any] = func.coalesce(func.jsonb_typeof(self.value), "missing")
        else:
            json_path = "$" + "".join(f'."{p}"' for p in path)
            where = bindparam(None, json_path, type_=String())
            self.value = self.text = func.json_extract(column, where)
            self.type = func.coalesce(func.json_type(column, where), "missing")

    def exists(self) -> ColumnElement[bool]:
        return self.type != "missing"

    def is_null(self) -> ColumnElement[bool]:
        return self.type.in_(("missing", "null"))

    def _is(self, value: JsonScalar) -> ColumnElement[bool]:
        if isinstance(value, bool):
            name = "boolean" if self.pg else ("true" if value else "false")
            test = self.type == name
            return and_(test, self.text == ("true" if value else "false")) if self.pg else test
        if self.pg:
            return self.type == _PG_TYPE[type(value)]
        return self.type.in_(_SQLITE_TYPES[type(value)])

    def compare(self, op: CmpOp, value: JsonScalar) -> ColumnElement[bool]:
        if isinstance(value, bool):
            return self._is(value) if op is CmpOp.EQ else literal(False, Boolean())
        if isinstance(value, str):
            return and_(self._is(value), apply_op(binary_text(self.text), op, value))
        right = _pg_json(value) if self.pg else value
        return and_(self._is(value), apply_op(self.value, op, right))

    def regex(self, pattern: str) -> ColumnElement[bool]:
        return and_(self._is(""), regex_op(self.text, pattern, self.pg))


def regex_op(subject: ColumnElement[Any], pattern: str, pg: bool) -> ColumnElement[bool]:
    param = bindparam(None, pattern, type_=String())
    return subject.op("~" if pg else "REGEXP", is_comparison=True)(param)


# ---------------------------------------------------------------- JSON arrays


def json_present(column: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
    """A JSON column holding a value: SQL NULL and a stored JSON ``null`` both count as unset."""
    kind = func.jsonb_typeof(column) if dialect == "postgresql" else func.json_type(column)
    return func.coalesce(kind, "null") != "null"


def _is_array(column: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
    kind = func.jsonb_typeof(column) if dialect == "postgresql" else func.json_type(column)
    return func.coalesce(kind, "missing") == "array"


def _sqlite_elements(column: ColumnElement[Any]) -> Any:
    return func.json_each(column).table_valued("value", "type")


def _sqlite_element_in(elem: Any, values: tuple[JsonScalar, ...]) -> ColumnElement[bool]:
    tests: list[ColumnElement[bool]] = []
    texts = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if texts:
        tests.append(and_(elem.c.type == "text", elem.c.value.in_(texts)))
    if numbers:
        tests.append(and_(elem.c.type.in_(("integer", "real")), elem.c.value.in_(numbers)))
    tests.extend(elem.c.type == ("true" if v else "false") for v in {v for v in values if isinstance(v, bool)})
    return or_(*tests) if tests else literal(False, Boolean())


def array_contains_any(column: ColumnElement[Any], values: tuple[JsonScalar, ...], dialect: str) -> ColumnElement[bool]:
    if not values:
        return literal(False, Boolean())
    if dialect == "postgresql":
        texts = [v for v in values if isinstance(v, str)]
        tests = [column.op("@>", is_comparison=True)(_pg_json([v])) for v in values if not isinstance(v, str)]
        if texts:
            tests.append(column.op("?|", is_comparison=True)(bindparam(None, texts, type_=ARRAY(String()))))
        return and_(_is_array(column, dialect), or_(*tests))
    elem = _sqlite_elements(column)
    return exists(select(literal(1)).select_from(elem).where(_sqlite_element_in(elem, values)))


def array_contains_all(column: ColumnElement[Any], values: tuple[JsonScalar, ...], dialect: str) -> ColumnElement[bool]:
    if not values:
        return literal(False, Boolean())
    if dialect == "postgresql":
        return and_(_is_array(column, dialect), column.op("@>", is_comparison=True)(_pg_json(list(values))))
    return and_(*(array_contains_any(column, (v,), dialect) for v in values))


def array_contained_by(column: ColumnElement[Any], values: tuple[JsonScalar, ...], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return and_(_is_array(column, dialect), column.op("<@", is_comparison=True)(_pg_json(list(values))))
    elem = _sqlite_elements(column)
    outside = exists(select(literal(1)).select_from(elem).where(not_(_sqlite_element_in(elem, values))))
    return and_(_is_array(column, dialect), not_(outside))


def array_equals(column: ColumnElement[Any], values: tuple[JsonScalar, ...], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return and_(column.is_not(None), column == _pg_json(list(values)))
    tests: list[ColumnElement[bool]] = [
        _is_array(column, dialect),
        func.json_array_length(column) == len(values),
    ]
    for i, v in enumerate(values):
        tests.append(_sqlite_at(column, i, v))
    return and_(true(), *tests)


def _sqlite_at(column: ColumnElement[Any], index: int, value: JsonScalar) -> ColumnElement[bool]:
    where = bindparam(None, f"$[{index}]", type_=String())
    kind = func.json_type(column, where)
    if isinstance(value, bool):
        return kind == ("true" if value else "false")
    return and_(kind.in_(_SQLITE_TYPES[type(value)]), func.json_extract(column, where) == value)
