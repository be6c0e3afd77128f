"""Several FHIR steps in ONE database transaction, through the unchanged interaction code.

:func:`in_transaction` opens a write transaction and hands back a :class:`FhirContext`
whose ``Records`` reads and writes through that one connection (:class:`BoundDatabase`:
``read()`` and ``write()`` both yield it and never commit). Everything the interactions
already do — policy, mapping, version rows, the audit entry — then happens inside it, and
any exception rolls it all back. Used by transaction Bundles, by ``If-Match`` (the version
check and the write are one transaction, so a lost race is 412, not 409) and by
conditional create (the search and the insert are one transaction).

Serialization: SQLite writers hold the database lock from ``BEGIN IMMEDIATE``. On
PostgreSQL a conditional create takes a transaction-scoped advisory lock keyed on the
resource type and the normalized condition, and an ``If-Match`` update locks the row
(``SELECT ... FOR UPDATE``) before it compares versions.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.fhir.context import FhirContext
from gateway.store.classes import ClassSpec
from gateway.store.database import Database


class BoundDatabase(Database):
    """A :class:`Database` whose every ``read()``/``write()`` is one already-open transaction."""

    def __init__(self, outer: Database, conn: AsyncConnection) -> None:  # no engines of its own
        self.url = outer.url
        self.engine = outer.engine
        self.read_engine = outer.read_engine
        self.dialect = outer.dialect
        self.memo = outer.memo
        self.sessions = outer.sessions
        self._inline = None
        self._raw = None
        self._conn = conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        yield self._conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        yield self._conn


@asynccontextmanager
async def in_transaction(ctx: FhirContext, *, lock: str | None = None) -> AsyncIterator[FhirContext]:
    """``ctx`` bound to one new write transaction; commits on normal exit, rolls back on any exception.

    ``lock``: a key for a PostgreSQL transaction-scoped advisory lock (SQLite needs none).
    """
    if isinstance(ctx.records.db, BoundDatabase):  # already inside one (a transaction Bundle): join it
        async with ctx.records.db.write() as conn:
            await _advisory_lock(conn, lock)
        yield ctx
        return
    async with ctx.records.db.write() as conn:
        await _advisory_lock(conn, lock)
        records = copy.copy(ctx.records)
        records.db = BoundDatabase(ctx.records.db, conn)
        yield replace(ctx, records=records)


async def _advisory_lock(conn: AsyncConnection, key: str | None) -> None:
    if key is not None and conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


async def lock_row(ctx: FhirContext, spec: ClassSpec, object_id: str) -> None:
    """Hold the row until the transaction ends (PostgreSQL; SQLite's writer lock already does)."""
    async with ctx.records.db.write() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(select(spec.pk).where(spec.pk == object_id).with_for_update())


def condition_key(resource_type: str, condition: str) -> str:
    """The advisory-lock key of a conditional create: type + the condition's parameters, sorted."""
    params = sorted(parse_qsl(condition.removeprefix("?"), keep_blank_values=True))
    return f"fhir-create:{resource_type}?{urlencode(params)}"
