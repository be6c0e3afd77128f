"""INSERTs and keyed SELECT/UPDATEs of the SQLite group commit, run on the driver without SQLAlchemy's
execution pipeline.

The HL7 door writes a 12-result message as 14 statements and about 48 rows (LabResults, their
first ``_Version`` rows, the AuditLog entries, the message-log row, the lookups before them).
Run through ``Connection.execute``, SQLAlchemy's per-statement and per-row machinery (execution
context, parameter processing into dicts, the cursor result) cost more CPU than SQLite spends
storing the rows, on the one core the whole door shares. The statements stay the Core
expressions the store builds (one definition of every write); only the running differs, as in
``leanselect`` for the read path:

* the compiled form is cached under SQLAlchemy's own cache key (which also hands back a
  statement's embedded values in order), or, for a multi-row INSERT, under the table and the
  rows' keys;
* values are bound with the columns' own bind processors from the same dialect, and scalar
  column defaults are filled in as SQLAlchemy would, so a row is stored byte for byte as
  ``execute`` stores it;
* the SQL goes to the transaction's own ``sqlite3`` connection, so it is part of the same
  BEGIN IMMEDIATE ... COMMIT; on PostgreSQL (``run_asyncpg``) to the transaction's own
  asyncpg connection, with the asyncpg dialect's bind processors, and SQLAlchemy's
  adapter (a greenlet hop, a cursor object and its own statement cache per call, about
  three times the CPU of the HL7 writer's statements themselves) is skipped. There a multi-row
  INSERT (a group's staged rows, its audit entries) goes by binary ``COPY ... FROM STDIN``
  rather than ``executemany``: the same rows, defaults and constraint errors, with a third less of
  PostgreSQL's CPU a row (measured with 96-104 rows a transaction: LabResult 88 -> 57 us,
  _Version 60 -> 36 us, AuditLog 55 -> 33 us; the HL7 bench's writer side by side, 8 connections
  +10%, 1 connection +9%).

Anything outside that shape (RETURNING, SQL-expression or callable defaults, rows with
differing keys, constructs without a cache key, other statement kinds) returns ``None`` and the
caller runs it through SQLAlchemy: the fast path is an optimisation, never a second meaning.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import JSON, ColumnElement, Dialect, Insert, Select, Table, Update, insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.base import Executable

from gateway.store import leanselect
from gateway.store.engine import JSON_CODECS
from gateway.store.types import UTCDateTime, sqlite_utc_text

__all__ = ["LeanResult", "prepare", "run", "run_asyncpg"]

_CACHE_MAX = 1024
Processor = leanselect.Converter


class Row(tuple[Any, ...]):
    """A result row: a tuple with attribute access by column name, like SQLAlchemy's ``Row``."""

    __slots__ = ()
    _names: dict[str, int]

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._names[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return {name: self[i] for name, i in self._names.items()}


class _Mappings:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows)

    def all(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def first(self) -> dict[str, Any] | None:
        return self._rows[0] if self._rows else None


class LeanResult:
    """The part of ``CursorResult`` the write paths use, over fetched rows."""

    def __init__(self, names: tuple[str, ...], rows: list[Row], rowcount: int) -> None:
        self._names = names
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def all(self) -> list[Row]:
        return list(self._rows)

    def first(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def mappings(self) -> _Mappings:
        return _Mappings([dict(zip(self._names, row, strict=True)) for row in self._rows])

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0][0]


def _json_text(value: Any) -> str:
    if value is JSON.NULL:
        return "null"
    return msgspec.json.encode(value).decode()


def bind_processor(column: ColumnElement[Any], dialect: Dialect, general: Processor | None) -> Processor | None:
    """``general`` (the column type's own bind processor), or a one-call equivalent for the two
    types an HL7 message binds most: JSON (about 110 values a message; SQLite and PostgreSQL, whose
    asyncpg dialect binds JSONB as the serializer's text too) and, on SQLite, UTC datetimes. The
    equivalence, value for value, is a unit test (tests/unit/test_leanwrite_binds.py)."""
    if dialect.name not in ("sqlite", "postgresql") or general is None:
        return general
    col_type = column.type
    if isinstance(col_type, UTCDateTime):
        return sqlite_utc_text if dialect.name == "sqlite" else general
    if isinstance(col_type, JSON) and getattr(dialect, "_json_serializer", None) is JSON_CODECS["json_serializer"]:
        return _json_text
    return general


@dataclass(frozen=True, slots=True)
class _Copy:
    """Where a multi-row INSERT's values go by ``COPY ... FROM STDIN`` (``run_asyncpg``): the table and
    its columns in the order of the bound values."""

    table: str
    schema: str | None
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _InsertPlan:
    """How a row (a dict) becomes the driver's positional values, without a Python step per value:
    ``getter`` takes the rows' values in ``?`` order in one C call, ``converted`` names the few
    positions whose column has a bind processor, and ``defaults`` the scalar defaults of columns
    the rows omit, inserted at their positions."""

    sql: str
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    converted: tuple[tuple[int, Processor], ...]
    defaults: tuple[tuple[int, Any], ...]
    copy: _Copy

    def bind(self, rows: Sequence[Mapping[str, Any]]) -> list[Sequence[Any]]:
        getter, converted, defaults = self.getter, self.converted, self.defaults
        if not converted and not defaults:
            return [getter(row) for row in rows]
        bound: list[Sequence[Any]] = []
        for row in rows:
            values = list(getter(row))
            for i, proc in converted:
                value = values[i]
                if value is not None:
                    values[i] = proc(value)
            for position, constant in defaults:
                values.insert(position, constant)
            bound.append(values)
        return bound


@dataclass(frozen=True, slots=True)
class _KeyedPlan:
    compiled: Any
    names: tuple[str, ...]
    converters: tuple[tuple[int, Processor], ...]
    row_class: type[Row]


_inserts: dict[tuple[Any, ...], _InsertPlan | None] = {}
_keyed_plans: dict[Any, _KeyedPlan] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _insert_plan(table: Table, keys: tuple[str, ...], dialect: Dialect) -> _InsertPlan | None:
    """Compiled once per (table, keys): None when a column the rows omit has a non-scalar default."""
    for column in table.columns:
        default = column.default
        if column.key not in keys and default is not None and not getattr(default, "is_scalar", False):
            return None
    compiled: Any = insert(table).compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    if compiled.positiontup is None:
        return None
    processors: Mapping[str, Processor | None] = {
        name: bind_processor(table.c[name], dialect, proc) for name, proc in compiled._bind_processors.items()
    }
    defaults = {c.key: c.default.arg for c in compiled.insert_prefetch if getattr(c.default, "is_scalar", False)}
    if len(defaults) != len(compiled.insert_prefetch) or compiled.postfetch or compiled.returning:
        return None
    taken: list[str] = []
    converted: list[tuple[int, Processor]] = []
    constants: list[tuple[int, Any]] = []
    for position, name in enumerate(compiled.positiontup):
        proc = processors.get(name)
        if name in keys:
            if proc is not None:
                converted.append((len(taken), proc))
            taken.append(name)
        elif name in defaults:
            value = defaults[name]
            constants.append((position, proc(value) if proc is not None and value is not None else value))
        else:
            return None
    if not taken:
        return None
    getter = itemgetter(*taken) if len(taken) > 1 else _one_value(taken[0])
    copy = _Copy(table.name, table.schema, tuple(table.c[name].name for name in compiled.positiontup))
    return _InsertPlan(compiled.string, getter, tuple(converted), tuple(constants), copy)


def _one_value(key: str) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    return lambda row: (row[key],)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One statement ready for a driver: SQL text, positional values (one tuple per row for an
    INSERT of several rows), and how to decode what a SELECT returns."""

    sql: str
    many: list[Sequence[Any]] | None
    one: list[Any]
    plan: _KeyedPlan | None
    copy: _Copy | None = None


def _prepare_insert(stmt: Insert, rows: Sequence[Mapping[str, Any]], dialect: Dialect) -> _Prepared | None:
    table = stmt.table
    if (
        not isinstance(table, Table)
        or stmt._values
        or stmt._multi_values
        or stmt._returning
        or stmt._post_values_clause
    ):
        return None
    if not rows:
        return None
    keys = tuple(rows[0])
    if any(tuple(row) != keys for row in rows):
        return None
    cache_key = (dialect.name, table, keys)
    plan = (
        _inserts[cache_key]
        if cache_key in _inserts
        else _remember(_inserts, cache_key, _insert_plan(table, keys, dialect))
    )
    if plan is None:
        return None
    return _Prepared(plan.sql, plan.bind(rows), [], None, plan.copy)


def _keyed_plan(stmt: Any, cache_key: Any, dialect: Dialect) -> _KeyedPlan:
    compiled = stmt.compile(dialect=dialect, cache_key=cache_key)
    names: tuple[str, ...] = ()
    convert_at: tuple[tuple[int, Processor], ...] = ()
    if isinstance(stmt, Select):
        names, converters = leanselect.result_columns(compiled, dialect)
        convert_at = leanselect.converting(converters)
    row_class = type("Row", (Row,), {"__slots__": (), "_names": {n: i for i, n in enumerate(names)}})
    return _KeyedPlan(compiled, names, convert_at, row_class)


def _prepare_keyed(stmt: Any, params: Mapping[str, Any] | None, dialect: Dialect) -> _Prepared | None:
    """A SELECT or UPDATE with its values embedded or given as one dict of bind parameters."""
    if isinstance(stmt, Update) and (stmt._returning or not isinstance(stmt.table, Table)):
        return None
    cache_key = stmt._generate_cache_key()
    if cache_key is None:
        return None
    memo = (dialect.name, cache_key.key)
    plan = _keyed_plans.get(memo)
    if plan is None:
        plan = _remember(_keyed_plans, memo, _keyed_plan(stmt, cache_key, dialect))
    sql, positional = leanselect.bound_statement(plan.compiled, params, cache_key.bindparams)
    return _Prepared(sql, None, positional, plan if isinstance(stmt, Select) else None)


def _rows(plan: _KeyedPlan, fetched: Iterable[Sequence[Any]]) -> LeanResult:
    row_class = plan.row_class
    rows = []
    for raw in fetched:
        if plan.converters:
            converted = list(raw)
            for i, convert in plan.converters:
                if converted[i] is not None:
                    converted[i] = convert(converted[i])
            raw = converted
        rows.append(row_class(raw))
    return LeanResult(plan.names, rows, -1)


def prepare(stmt: Executable, parameters: Any, dialect: Dialect) -> _Prepared | None:
    """``stmt`` with its values bound for the driver, when it has a shape this module covers."""
    if isinstance(stmt, Insert):
        if parameters is None:
            return None
        rows = [parameters] if isinstance(parameters, Mapping) else parameters
        if not isinstance(rows, Sequence) or not all(isinstance(r, Mapping) for r in rows):
            return None
        return _prepare_insert(stmt, rows, dialect)
    if isinstance(stmt, Select | Update):
        if parameters is not None and not isinstance(parameters, Mapping):
            return None
        return _prepare_keyed(stmt, parameters, dialect)
    return None


def run(driver: sqlite3.Connection, stmt: Executable, parameters: Any, dialect: Dialect) -> LeanResult | None:
    """Run ``stmt`` on a ``sqlite3`` connection; None means "use SQLAlchemy" (nothing was run)."""
    prepared = prepare(stmt, parameters, dialect)
    if prepared is None:
        return None
    if prepared.many is not None:
        many = prepared.many
        cursor = driver.execute(prepared.sql, many[0]) if len(many) == 1 else driver.executemany(prepared.sql, many)
        return LeanResult((), [], cursor.rowcount)
    cursor = driver.execute(prepared.sql, prepared.one)
    if prepared.plan is None:
        return LeanResult((), [], cursor.rowcount)
    return _rows(prepared.plan, cursor.fetchall())


async def run_asyncpg(driver: Any, stmt: Executable, parameters: Any, dialect: Dialect) -> LeanResult | None:
    """``run`` on an ``asyncpg`` connection that is inside the caller's transaction (asyncpg keeps
    each SQL text prepared per connection). Errors come out as SQLAlchemy's, as through
    ``execute``: ``IntegrityError`` for a constraint (callers retry or translate it),
    ``DBAPIError`` for the rest."""
    prepared = prepare(stmt, parameters, dialect)
    if prepared is None:
        return None
    try:
        if prepared.many is not None:
            many = prepared.many
            if len(many) > 1:
                if prepared.copy is not None:
                    copy = prepared.copy
                    await driver.copy_records_to_table(
                        copy.table, records=many, columns=copy.columns, schema_name=copy.schema
                    )
                else:
                    await driver.executemany(prepared.sql, many)
                return LeanResult((), [], len(many))
            return LeanResult((), [], _affected(await driver.execute(prepared.sql, *many[0])))
        if prepared.plan is None:
            return LeanResult((), [], _affected(await driver.execute(prepared.sql, *prepared.one)))
        fetched = await driver.fetch(prepared.sql, *prepared.one)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(prepared.sql, None, exc) from exc
    except _CONNECTION_LOST as exc:  # as SQLAlchemy reports a disconnect: the connection is unusable
        raise DBAPIError(prepared.sql, None, exc, connection_invalidated=True) from exc
    except asyncpg.PostgresError as exc:
        raise DBAPIError(prepared.sql, None, exc) from exc
    return _rows(prepared.plan, fetched)


_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,  # "connection is closed"
    OSError,
)
"""What says the connection itself is gone, so the caller may run the work again on another."""


def _affected(status: str) -> int:
    """Rows an INSERT/UPDATE/DELETE touched, from its command tag ("UPDATE 1", "INSERT 0 3")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1
