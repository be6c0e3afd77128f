"""The store handle the app holds: a write path and a read path over one database.

On SQLite the two are separate pools: writers take the lock at BEGIN IMMEDIATE,
readers use deferred transactions and, under WAL, never wait for writers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Result, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable

from gateway.store.engine import create_engine, create_inline_reader


class InlineConnection:
    """A synchronous SQLite connection behind the async ``execute`` interface, run on the loop thread.

    A keyed SQLite read takes tens of microseconds; sending it through aiosqlite's
    worker thread costs several thread hand-offs per statement (DESIGN.md measured the
    async ORM at 0.09 of a trivial route against 0.4 for the raw driver). Under WAL a
    reader never waits for a writer, so reads run inline; writes keep the async engine.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        return fn(self._conn, *args)

    def driver(self) -> Any:
        """The underlying ``sqlite3.Connection``, for the prepared hot-path statements."""
        return self._conn.connection.driver_connection


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url, echo=echo, immediate=True)
        self.read_engine: AsyncEngine = (
            create_engine(url, echo=echo, immediate=False) if url.startswith("sqlite") else self.engine
        )
        self.dialect: str = self.engine.dialect.name
        self._inline: Engine | None = create_inline_reader(url, echo=echo) if url.startswith("sqlite") else None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction; commits on normal exit, rolls back on any exception."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only view; on SQLite an inline connection (see ``InlineConnection``)."""
        if self._inline is not None:
            with self._inline.connect() as sync_conn:
                yield InlineConnection(sync_conn)  # type: ignore[misc]
                sync_conn.rollback()
            return
        async with self.read_engine.connect() as conn:
            yield conn

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        if self._inline is not None:
            self._inline.dispose()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
