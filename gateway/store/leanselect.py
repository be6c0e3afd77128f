"""SELECT statements on the inline SQLite reader without SQLAlchemy's execution pipeline.

A page of 20 rows through ``Connection.execute`` spent more time in SQLAlchemy
(connection checkout, the begin event, execution context, cursor wrapping, per-row
``RowMapping``) than SQLite spent answering it. Here a statement still comes from the
same Core expressions the policy builds, so there is one definition of every filter;
only the running differs: the compiled form is cached under SQLAlchemy's own cache
key (the key also hands back this statement's bound values in order), the SQL goes
straight to the long-lived ``sqlite3`` read connection, and rows are decoded by
per-column converters into dicts (through ``gateway.store.rowmemo``).

Each statement runs in its own autocommit snapshot (as the prepared hot-path
statements do): a page and its included objects may come from two snapshots, which
is what Parse Server on MongoDB gives too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Select

from gateway.store.rowmemo import MemoRow, RowMemo
from gateway.store.statements import Built

_CACHE_MAX = 2048

Converter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def result_columns(compiled: Any, dialect: Dialect) -> tuple[tuple[str, ...], tuple[Converter, ...]]:
    """Per result column of a compiled SELECT: the key ``RowMapping`` would use and SQLAlchemy's
    own result processor (``_identity`` when none), so values decode exactly as ``execute`` would."""
    columns = compiled._result_columns
    names = tuple(str(rc[0]) for rc in columns)
    converters = tuple(rc[3]._cached_result_processor(dialect, None) or _identity for rc in columns)
    return names, converters


def converting(converters: tuple[Converter, ...]) -> tuple[tuple[int, Converter], ...]:
    """The columns that need decoding (dates, JSON, booleans): most columns are text as stored."""
    return tuple((i, f) for i, f in enumerate(converters) if f is not _identity)


def bound_statement(compiled: Any, params: Mapping[str, Any] | None, extracted: Any) -> tuple[str, list[Any]]:
    """The SQL of ``compiled`` with expanding IN rendered, and its values in positional order, each
    through its column type's bind processor; ``params`` are values for named ``bindparam``s and
    ``extracted`` the values a cache key took out of the statement (None when it has no key)."""
    values = compiled.construct_params(params, extracted_parameters=extracted, escape_names=False, _no_postcompile=True)
    if not compiled.post_compile_params and not compiled.literal_execute_params:
        # Nothing to expand: the compiled SQL and order are final (SQLAlchemy's expansion would only
        # run two regex substitutions over the SQL that change nothing; half this function's time).
        return compiled.string, _positional(compiled.positiontup, values, compiled._bind_processors)
    expansion = _expansion(compiled, values)
    if expansion is None:
        state = compiled._process_parameters_for_postcompile(values)
        processors: Mapping[str, Converter] = compiled._bind_processors
        if state.processors:  # expanded IN parameters get processors of their own
            processors = {**processors, **state.processors}
        return state.statement, _positional(state.positiontup, state.parameters, processors)
    positional = []
    for (name, index), proc in zip(expansion.order, expansion.processors, strict=True):
        value = values[name] if index < 0 else values[name][index]
        positional.append(proc(value) if proc is not None and value is not None else value)
    return expansion.statement, positional


def _positional(
    names: Sequence[str] | None, bound: Mapping[str, Any], processors: Mapping[str, Converter]
) -> list[Any]:
    positional = []
    for name in names or ():
        value = bound[name]
        proc = processors.get(name)
        positional.append(proc(value) if proc is not None and value is not None else value)
    return positional


@dataclass(frozen=True, slots=True)
class _Expansion:
    """A statement's SQL with its IN lists expanded for one set of list lengths, and where each
    positional value comes from: ``(name, -1)`` a plain parameter, ``(name, i)`` item ``i`` of a list."""

    compiled: Any
    """Held so that its ``id`` (half the memo key) is not reused while the entry lives."""
    statement: str
    order: tuple[tuple[str, int], ...]
    processors: tuple[Converter | None, ...]


_expansions: dict[tuple[int, tuple[int, ...]], _Expansion] = {}


def _expansion(compiled: Any, values: Mapping[str, Any]) -> _Expansion | None:
    """The expansion for these list lengths, remembered: the SQL depends on nothing else, and
    SQLAlchemy renders it afresh on every run (25 us for a 12-id lookup, one a stored HL7 message).
    None for what it does not cover (literal-execute parameters, tuple IN)."""
    if compiled.literal_execute_params:
        return None
    expanding = []
    for param in compiled.post_compile_params:
        if param.literal_execute or param.type._is_tuple_type:
            return None
        expanding.append(compiled.bind_names[param])
    names = tuple(sorted(expanding))
    key = (id(compiled), tuple(len(values[name]) for name in names))
    found = _expansions.get(key)
    if found is not None and found.compiled is compiled:
        return found
    state = compiled._process_parameters_for_postcompile(dict(values))
    items = {item: (name, i) for name, items_of in state.parameter_expansion.items() for i, item in enumerate(items_of)}
    processors = {**compiled._bind_processors, **state.processors}
    order = tuple(items.get(name, (name, -1)) for name in state.positiontup or ())
    found = _Expansion(compiled, state.statement, order, tuple(processors.get(n) for n in state.positiontup or ()))
    if len(_expansions) >= _CACHE_MAX:
        _expansions.clear()
    _expansions[key] = found
    return found


def _plan(stmt: Select[Any], dialect: Dialect, **kw: Any) -> _Plan:
    """Compile once, with how each result column decodes (``result_columns``)."""
    compiled = stmt.compile(dialect=dialect, **kw)
    names, converters = result_columns(compiled, dialect)
    return _Plan(compiled, names, converters, converting(converters))


@dataclass(frozen=True, slots=True)
class _Plan:
    compiled: Any
    """The ``SQLCompiler`` for one statement shape."""
    names: tuple[str, ...]
    converters: tuple[Converter, ...]
    convert_at: tuple[tuple[int, Converter], ...]
    """Only the columns that need decoding (dates, JSON, booleans): most columns are text as stored."""


_plans: dict[Any, _Plan] = {}


def _plan_for(stmt: Select[Any], cache_key: Any, dialect: Dialect) -> _Plan:
    key = cache_key.key
    plan = _plans.get(key)
    if plan is None:
        plan = _plan(stmt, dialect, cache_key=cache_key)
        if len(_plans) >= _CACHE_MAX:
            _plans.clear()
        _plans[key] = plan
    return plan


def _statement_and_params(stmt: Select[Any], dialect: Dialect) -> tuple[_Plan, str, list[Any]]:
    cache_key = stmt._generate_cache_key()
    if cache_key is None:  # a construct that cannot be cached: compile it for this run only
        plan = _plan(stmt, dialect)
        sql, positional = bound_statement(plan.compiled, None, None)
    else:
        plan = _plan_for(stmt, cache_key, dialect)
        sql, positional = bound_statement(plan.compiled, None, cache_key.bindparams)
    return plan, sql, positional


def fetch_dicts(driver: sqlite3.Connection, stmt: Select[Any], dialect: Dialect, memo: RowMemo) -> list[dict[str, Any]]:
    """Every row of ``stmt`` as a dict keyed by selected column name, decoded through ``memo``
    (``gateway.store.rowmemo``: rows read before are decoded once)."""
    plan, sql, params = _statement_and_params(stmt, dialect)
    rows = driver.execute(sql, params).fetchall()
    return memo.rows(plan.names, plan.convert_at, rows)


def fetch_built(
    driver: sqlite3.Connection, built: Built, dialect: Dialect, memo: RowMemo, counter: int | None = None
) -> list[dict[str, Any]]:
    """``fetch_dicts`` for a remembered statement: compiled and bound once, then run as SQL text.

    ``counter``: the class's change counter as this request read it (``gateway.store.changes``).
    With one, the statement first runs selecting only ``objectId``: the same rows, in the same
    order, under the same policy. When every one of them is a row fetched before under that
    counter (so unchanged since), those are the answer; SQLite then reads the index and each
    row's ACL but builds no values (a 20-row page: about 18 against 65 µs). Otherwise the
    whole statement runs as without one, and its rows are marked with the counter."""
    prepared = built.prepared
    if prepared is None:
        prepared = built.prepared = _statement_and_params(built.stmt, dialect)
    plan, sql, params = prepared
    if counter is not None and "objectId" in plan.names:
        ids = built.ids
        if ids is None:
            stmt = built.stmt.with_only_columns(built.stmt.selected_columns["objectId"])
            ids = built.ids = _statement_and_params(stmt, dialect)
        kept: list[dict[str, Any]] = []
        for (object_id,) in driver.execute(ids[1], ids[2]).fetchall():
            found = memo.current(plan.names, plan.convert_at, object_id, counter)
            if found is None:
                break
            kept.append(found)
        else:
            return kept
    rows = driver.execute(sql, params).fetchall()
    out = memo.rows(plan.names, plan.convert_at, rows)
    if counter is not None:
        for row in out:
            if isinstance(row, MemoRow):
                row.memo.counter = counter
    return out


def fetch_tuples(driver: sqlite3.Connection, stmt: Select[Any], dialect: Dialect) -> Sequence[tuple[Any, ...]]:
    """Every row of ``stmt`` as a tuple of converted values."""
    plan, sql, params = _statement_and_params(stmt, dialect)
    rows = driver.execute(sql, params).fetchall()
    converters = plan.converters
    return [tuple(f(v) for f, v in zip(converters, row, strict=True)) for row in rows]
