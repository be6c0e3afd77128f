"""Row-level operations on Parse classes with Core statements (no ORM object graphs).

Records are plain dicts keyed by Parse field name: what mappings and encoders take.
Join-table fields (``careTeam``) are loaded in one extra query per page, not per row.
Every change to a versioned class writes a ``_Version`` snapshot in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import Conflict, Invalid, ParseCode
from gateway.store.classes import ClassSpec, FieldType
from gateway.store.database import InlineConnection
from gateway.store.models import Version, table_of
from gateway.store.rowmemo import INTERNAL_PREFIX, MemoRow
from gateway.store.statements import Built

Record = dict[str, Any]


def now() -> datetime:
    """Millisecond precision, as Parse dates carry; keeps round trips exact."""
    t = datetime.now(UTC)
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)


def record_from_row(row: Mapping[str, Any] | RowMapping, *, keep_internal: bool = False) -> Record:
    if keep_internal:
        return dict(row)
    if type(row) is MemoRow:  # a row as read: its entry has the public part already
        return row.memo.public_row()
    return {k: v for k, v in row.items() if not k.startswith(INTERNAL_PREFIX)}


def _column_values(spec: ClassSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in spec.table.c}


_JOIN_FIELDS: dict[str, tuple[ClassSpec, tuple[str, ...]]] = {}


def join_fields(spec: ClassSpec) -> tuple[str, ...]:
    """The class's pointer arrays kept in join tables (``careTeam``); per class, once: every read
    of a page (and of its included objects) asks."""
    cached = _JOIN_FIELDS.get(spec.name)
    if cached is None or cached[0] is not spec:
        names = tuple(name for name, f in spec.fields.items() if f.join is not None and f.type is FieldType.ARRAY)
        cached = _JOIN_FIELDS[spec.name] = (spec, names)
    return cached[1]


async def load_join_arrays(conn: AsyncConnection, spec: ClassSpec, records: Sequence[Record]) -> None:
    """Fill pointer-array fields (``careTeam``) for a page of records with one query each."""
    names = join_fields(spec)
    if not names or not records:
        return
    ids = [r["objectId"] for r in records]
    for name in names:
        join = spec.fields[name].join
        assert join is not None
        order = [join.owning, join.table.c.position] if join.ordered else [join.owning, join.related]
        stmt = select(join.owning, join.related).where(join.owning.in_(ids)).order_by(*order)
        rows = conn.fetch_tuples(stmt) if isinstance(conn, InlineConnection) else await conn.execute(stmt)
        by_owner: dict[str, list[str]] = {}
        for owning, related in rows:
            by_owner.setdefault(owning, []).append(related)
        for record in records:
            record[name] = by_owner.get(record["objectId"], [])


_PUBLIC: dict[str, tuple[Any, ...]] = {}


def _public_columns(spec: ClassSpec) -> tuple[Any, ...]:
    """A page of records never reads ``_rperm``/``_wperm``/secrets back: they are only filtered on in SQL."""
    cols = _PUBLIC.get(spec.name)
    if cols is None:
        cols = _PUBLIC[spec.name] = tuple(c for c in spec.table.columns if not c.name.startswith(INTERNAL_PREFIX))
    return cols


_BASE: dict[tuple[str, bool], Select[Any]] = {}


def select_statement(
    spec: ClassSpec,
    where: ColumnElement[bool] | None = None,
    *,
    order: Sequence[ColumnElement[Any]] = (),
    limit: int | None = None,
    offset: int | None = None,
    keep_internal: bool = False,
) -> Select[Any]:
    """The SELECT of a page of records (the column list is built once per class: coercing
    two dozen columns was a tenth of a list request)."""
    base = _BASE.get((spec.name, keep_internal))
    if base is None:
        base = _BASE[(spec.name, keep_internal)] = select(
            *(spec.table.columns if keep_internal else _public_columns(spec))
        )
    stmt = base
    if where is not None:
        stmt = stmt.where(where)
    if order:
        stmt = stmt.order_by(*order)
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return stmt


async def select_records(
    conn: AsyncConnection,
    spec: ClassSpec,
    where: ColumnElement[bool] | None = None,
    *,
    order: Sequence[ColumnElement[Any]] = (),
    limit: int | None = None,
    offset: int | None = None,
    keep_internal: bool = False,
    with_joins: bool = True,
    built: Built | None = None,
) -> list[Record]:
    """A page of records; ``built`` is a remembered ``select_statement`` (``gateway.store.statements``)
    and, when given, stands for ``where``/``order``/``limit``/``offset``."""
    if built is None:
        stmt = select_statement(spec, where, order=order, limit=limit, offset=offset, keep_internal=keep_internal)
        if isinstance(conn, InlineConnection):
            records = conn.fetch_dicts(stmt)
        else:
            records = [dict(row) for row in (await conn.execute(stmt)).mappings()]
    elif isinstance(conn, InlineConnection):
        records = conn.fetch_built(built, spec.name)
    else:
        records = [dict(row) for row in (await conn.execute(built.stmt)).mappings()]
    if with_joins:
        await load_join_arrays(conn, spec, records)
    return records


async def get_record(
    conn: AsyncConnection,
    spec: ClassSpec,
    object_id: str,
    where: ColumnElement[bool] | None = None,
    *,
    keep_internal: bool = False,
    for_update: bool = False,
) -> Record | None:
    cond = spec.pk == object_id
    if where is not None:
        cond = cond & where
    stmt = select(spec.table).where(cond)
    if for_update and conn.dialect.name == "postgresql":
        # FOR NO KEY UPDATE: the lock an UPDATE of non-key columns takes itself (an objectId never
        # changes). FOR UPDATE would also block rows being inserted that point at this one (their
        # foreign-key check takes KEY SHARE): an HL7 group inserting a patient's results would wait
        # for another transaction that is only changing that patient's demographics.
        stmt = stmt.with_for_update(key_share=True)
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        return None
    record = record_from_row(row, keep_internal=keep_internal)
    await load_join_arrays(conn, spec, [record])
    return record


async def count_records(conn: AsyncConnection, spec: ClassSpec, where: ColumnElement[bool] | None) -> int:
    stmt = select(func.count()).select_from(spec.table)
    if where is not None:
        stmt = stmt.where(where)
    if isinstance(conn, InlineConnection):
        return int(conn.fetch_tuples(stmt)[0][0])
    return int((await conn.execute(stmt)).scalar_one())


def _integrity_error(exc: IntegrityError) -> Exception:
    text = str(exc.orig).lower()
    if "unique" in text or "duplicate" in text:
        return Conflict()
    return Invalid("A pointer refers to an object that does not exist.", parse_code=ParseCode.INVALID_POINTER)


async def _write_joins(conn: AsyncConnection, spec: ClassSpec, object_id: str, joins: Mapping[str, list[str]]) -> None:
    for name, related in joins.items():
        join = spec.fields[name].join
        assert join is not None
        await conn.execute(delete(join.table).where(join.owning == object_id))
        if related:
            rows: list[dict[str, Any]] = []
            for pos, rid in enumerate(dict.fromkeys(related)):
                row: dict[str, Any] = {"owningId": object_id, "relatedId": rid}
                if join.ordered:
                    row["position"] = pos
                rows.append(row)
            await conn.execute(insert(join.table), rows)


async def write_version(
    conn: AsyncConnection, spec: ClassSpec, record: Mapping[str, Any], actor: str | None, *, deleted: bool = False
) -> None:
    if not spec.versioned:
        return
    data = {k: _jsonable(v) for k, v in record.items() if not k.startswith(INTERNAL_PREFIX)}
    await conn.execute(
        insert(table_of(Version)),
        {
            "className": spec.name,
            "objectId": record["objectId"],
            "version": record["version"],
            "data": data,
            "deleted": deleted,
            "createdAt": record.get("updatedAt") or now(),
            "actor": actor,
        },
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


async def insert_record(
    conn: AsyncConnection,
    spec: ClassSpec,
    values: Mapping[str, Any],
    *,
    actor: str | None,
    joins: Mapping[str, list[str]] | None = None,
) -> Record:
    row = _column_values(spec, values)
    if spec.versioned:
        row["version"] = 1
    try:
        async with conn.begin_nested():
            await conn.execute(insert(spec.table), row)
            if joins:
                await _write_joins(conn, spec, row["objectId"], joins)
    except IntegrityError as exc:
        raise _integrity_error(exc) from exc
    record = {k: v for k, v in row.items() if not k.startswith(INTERNAL_PREFIX)}
    for name in join_fields(spec):
        record[name] = list((joins or {}).get(name, []))
    await write_version(conn, spec, record, actor)
    return record


async def update_record(
    conn: AsyncConnection,
    spec: ClassSpec,
    current: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    actor: str | None,
    joins: Mapping[str, list[str]] | None = None,
) -> Record:
    """Apply ``changes`` with an optimistic version check, so concurrent writers cannot lose updates."""
    row = _column_values(spec, changes)
    cond = spec.pk == current["objectId"]
    if spec.versioned:
        row["version"] = int(current["version"]) + 1
        cond = cond & (spec.table.c.version == current["version"])
    try:
        async with conn.begin_nested():
            result = await conn.execute(update(spec.table).where(cond).values(**row))
            if result.rowcount != 1:
                raise Conflict(
                    "The object was changed by another request; retry.", parse_code=ParseCode.OPERATION_FORBIDDEN
                )
            if joins:
                await _write_joins(conn, spec, current["objectId"], joins)
    except IntegrityError as exc:
        raise _integrity_error(exc) from exc
    merged = {k: v for k, v in current.items() if not k.startswith(INTERNAL_PREFIX)}
    merged.update({k: v for k, v in row.items() if not k.startswith(INTERNAL_PREFIX)})
    for name, related in (joins or {}).items():
        merged[name] = list(dict.fromkeys(related))
    await write_version(conn, spec, merged, actor)
    return merged


async def delete_record(
    conn: AsyncConnection, spec: ClassSpec, current: Mapping[str, Any], *, actor: str | None
) -> None:
    try:
        async with conn.begin_nested():
            await conn.execute(delete(spec.table).where(spec.pk == current["objectId"]))
    except IntegrityError as exc:
        raise Invalid(
            "The object is still referenced by other objects and cannot be deleted.",
            parse_code=ParseCode.OPERATION_FORBIDDEN,
        ) from exc
    if spec.versioned:
        tomb = dict(current)
        tomb["version"] = int(current["version"]) + 1
        tomb["updatedAt"] = now()
        await write_version(conn, spec, tomb, actor, deleted=True)


async def set_acl(
    conn: AsyncConnection,
    spec: ClassSpec,
    object_ids: Iterable[str],
    acl: dict[str, Any],
    rperm: list[str],
    wperm: list[str],
) -> None:
    """Rewrite the server-derived ACL (not a content change: no version row)."""
    ids = list(object_ids)
    if ids:
        await conn.execute(update(spec.table).where(spec.pk.in_(ids)).values(ACL=acl, _rperm=rperm, _wperm=wperm))
