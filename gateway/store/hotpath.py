"""The two statements every authenticated read runs, prepared once and run lean.

``session_by_token`` (who is asking) and ``row_by_id`` (the object) run on every GET.
On SQLite they go straight to the driver on the inline read connection with SQL text
built once per class, and rows are decoded by per-column converters; on PostgreSQL
they are prebuilt Core statements whose compiled form SQLAlchemy caches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import JSON, Boolean, ColumnElement, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import changes
from gateway.store.classes import ClassSpec
from gateway.store.database import InlineConnection
from gateway.store.models import PatientProfile, Session, User, table_of
from gateway.store.rowmemo import MemoRow
from gateway.store.types import UTCDateTime, parse_sqlite_utc

Row = dict[str, Any]
Converter = Callable[[Any], Any]

_sessions = table_of(Session)
_users = table_of(User)
_patients = table_of(PatientProfile)


_to_datetime = parse_sqlite_utc


def _to_json(value: Any) -> Any:
    return None if value is None else msgspec.json.decode(value)


def _to_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _identity(value: Any) -> Any:
    return value


def _converter(column: ColumnElement[Any]) -> Converter:
    col_type = column.type
    if isinstance(col_type, UTCDateTime):
        return _to_datetime
    if isinstance(col_type, Boolean):
        return _to_bool
    if isinstance(col_type, JSON):
        return _to_json
    return _identity


@cache
def _sqlite_select(table_name: str) -> tuple[str, tuple[str, ...], tuple[tuple[int, Converter], ...]]:
    """SQL text, column names, and (index, converter) for the columns that need decoding."""
    from gateway.store.classes import CLASSES

    spec = CLASSES[table_name]
    names = tuple(str(c.name) for c in spec.table.columns)
    converters = tuple(_converter(c) for c in spec.table.columns)
    convert_at = tuple((i, f) for i, f in enumerate(converters) if f is not _identity)
    cols = ", ".join(f'"{n}"' for n in names)
    return f'SELECT {cols} FROM "{table_name}" WHERE "objectId" = ?', names, convert_at


@cache
def _core_select(table_name: str) -> Select[Any]:
    from gateway.store.classes import CLASSES

    spec = CLASSES[table_name]
    return select(spec.table).where(spec.pk == bindparam("oid"))


async def row_by_id(conn: AsyncConnection | InlineConnection, spec: ClassSpec, object_id: str) -> Row | None:
    """The whole row, internal columns included (``_rperm`` is checked by the caller's policy).

    On SQLite an object this process has read before is reused without a statement while its
    class's change counter, as this request read it, is what it was before that read
    (``gateway.store.changes``)."""
    if isinstance(conn, InlineConnection):
        sql, names, convert_at = _sqlite_select(spec.name)
        counters = changes.observed()
        counter = None if counters is None else counters.get(spec.name)
        if counter is not None:
            kept = conn.memo.current(names, convert_at, object_id, counter)
            if kept is not None:
                return kept
        rows = conn.driver().execute(sql, (object_id,)).fetchall()
        if not rows:
            return None
        row = conn.memo.rows(names, convert_at, rows)[0]
        if counter is not None and isinstance(row, MemoRow):
            row.memo.counter = counter
        return row
    result = await conn.execute(_core_select(spec.name), {"oid": object_id})
    mapped = result.mappings().first()
    return None if mapped is None else dict(mapped)


_SESSION_SQL = (
    'SELECT s."objectId", s."user", s."expiresAt", u."username", '
    '(SELECT p."objectId" FROM "PatientProfile" p WHERE p."user" = s."user"), '
    '(SELECT json_group_array(r."name") FROM "_Join_users_Role" j JOIN "_Role" r ON r."objectId" = j."owningId" '
    'WHERE j."relatedId" = s."user"), '
    'EXISTS (SELECT 1 FROM "_Join_roles_Role") '
    'FROM "_Session" s JOIN "_User" u ON u."objectId" = s."user" WHERE s."_token_hash" = ?'
)
"""The session, its user, their own patient, and their directly granted roles in one statement.
Roles within roles need the recursive ``_ROLES_SQL``; the last column says whether any exist."""

_SESSION_CORE = (
    select(
        _sessions.c.objectId,
        _sessions.c.user,
        _sessions.c.expiresAt,
        _users.c.username,
        select(_patients.c.objectId).where(_patients.c.user == _sessions.c.user).scalar_subquery(),
    )
    .join(_users, _users.c.objectId == _sessions.c.user)
    .where(_sessions.c._token_hash == bindparam("digest"))
)

_ROLES_SQL = (
    'WITH RECURSIVE r(id) AS (SELECT "owningId" FROM "_Join_users_Role" WHERE "relatedId" = ? '
    'UNION SELECT j."owningId" FROM "_Join_roles_Role" j JOIN r ON j."relatedId" = r.id) '
    'SELECT "name" FROM "_Role" WHERE "objectId" IN (SELECT id FROM r)'
)


async def session_by_token(
    conn: AsyncConnection | InlineConnection, digest: str
) -> tuple[str, str, datetime, str, str | None, frozenset[str] | None] | None:
    """(session id, user id, expiresAt, username, own patient id, role names) for a token digest.

    On SQLite the role names come in the same statement while no role contains another
    (the usual deployment: patient, provider, admin, care teams), else from ``_ROLES_SQL``,
    and the answer is remembered while ``_AuthEpoch`` is unchanged (``gateway.store.sessionmemo``).
    On PostgreSQL the role names are ``None`` and the caller asks ``user_roles``."""
    if isinstance(conn, InlineConnection):
        driver = conn.driver()
        sessions = conn.sessions
        epoch: int | None = None
        if sessions.capacity or conn.memo.capacity:
            # Read before the session rows, so a remembered answer is never older than its epoch;
            # the same statement reads the class counters ``row_by_id`` uses later in this request.
            counters = changes.read(driver)
            epoch = None if counters is None or not sessions.capacity else counters.get(changes.AUTH)
            if epoch is not None:
                hit = sessions.get(digest, epoch)
                if hit is not None:
                    return hit
        rows = driver.execute(_SESSION_SQL, (digest,)).fetchall()
        found = rows[0] if rows else None
        if found is None:
            return None
        expires = _to_datetime(found[2])
        assert expires is not None
        roles = (
            frozenset(r[0] for r in driver.execute(_ROLES_SQL, (found[1],)).fetchall())
            if found[6]
            else frozenset(msgspec.json.decode(found[5]))
        )
        resolved = (found[0], found[1], expires, found[3], found[4], roles)
        if epoch is not None:
            sessions.put(digest, epoch, resolved)
        return resolved
    row = (await conn.execute(_SESSION_CORE, {"digest": digest})).first()
    if row is None:
        return None
    return row[0], row[1], row[2], row[3], row[4], None


async def role_names(conn: AsyncConnection | InlineConnection, user_id: str) -> frozenset[str] | None:
    """All role names of a user (roles-within-roles included) in one recursive query on SQLite.

    Returns None on PostgreSQL, where the caller uses the Core implementation.
    """
    if isinstance(conn, InlineConnection):
        return frozenset(r[0] for r in conn.driver().execute(_ROLES_SQL, (user_id,)).fetchall())
    return None


@cache
def _sqlite_select_in(table_name: str, count: int) -> str:
    sql, _, _ = _sqlite_select(table_name)
    return sql.replace('"objectId" = ?', '"objectId" IN (' + ",".join("?" * count) + ")")


async def rows_by_ids(conn: AsyncConnection | InlineConnection, spec: ClassSpec, object_ids: list[str]) -> list[Row]:
    """Whole rows (internal columns included) for a set of ids, in no particular order.

    Included objects are fetched by key, like ``row_by_id``: the caller checks each row
    with ``readable`` (the Python form of ``read_filter``) rather than sending the ACL
    sub-select to SQL for a handful of rows.
    """
    if not object_ids:
        return []
    if isinstance(conn, InlineConnection):
        _, names, convert_at = _sqlite_select(spec.name)
        rows = conn.driver().execute(_sqlite_select_in(spec.name, len(object_ids)), object_ids).fetchall()
        return conn.memo.rows(names, convert_at, rows)
    result = await conn.execute(select(spec.table).where(spec.pk.in_(object_ids)))
    return [dict(m) for m in result.mappings()]
