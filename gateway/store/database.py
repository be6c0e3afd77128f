"""The store handle the app holds: a write path and a read path over one database.

On SQLite the two are separate pools: writers take the lock at BEGIN IMMEDIATE,
readers use deferred transactions and, under WAL, never wait for writers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Result, Select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable

from gateway.native.query.regex import install_sqlite_functions
from gateway.store import changes, leanselect
from gateway.store.engine import create_engine, create_inline_reader
from gateway.store.rowmemo import RowMemo
from gateway.store.sessionmemo import SessionMemo
from gateway.store.statements import Built


class InlineConnection:
    """A synchronous SQLite connection behind the async ``execute`` interface, run on the loop thread.

    A keyed SQLite read takes tens of microseconds; sending it through aiosqlite's
    worker thread costs several thread hand-offs per statement (DESIGN.md measured the
    async ORM at 0.09 of a trivial route against 0.4 for the raw driver). Under WAL a
    reader never waits for a writer, so reads run inline; writes keep the async engine.
    The prepared hot-path statements use one long-lived autocommit driver connection
    (``driver()``); other statements check out a pooled SQLAlchemy connection lazily.
    """

    def __init__(self, engine: Engine, driver: sqlite3.Connection, memo: RowMemo, sessions: SessionMemo) -> None:
        self._engine = engine
        self._driver = driver
        self.memo = memo
        """Decoded rows of earlier reads (``gateway.store.rowmemo``), shared by every reader."""
        self.sessions = sessions
        """Sessions resolved by earlier reads (``gateway.store.sessionmemo``), shared by every reader."""
        self._conn: Connection | None = None
        self.dialect = engine.dialect

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        return self._connection().execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self._connection().scalar(statement, parameters)

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        return fn(self._connection(), *args)

    def fetch_dicts(self, statement: Select[Any]) -> list[dict[str, Any]]:
        """Run a SELECT on the driver connection (see ``leanselect``); rows as dicts."""
        return leanselect.fetch_dicts(self._driver, statement, self.dialect, self.memo)

    def fetch_built(self, built: Built, class_name: str | None = None) -> list[dict[str, Any]]:
        """A remembered statement (``gateway.store.statements``) on the driver connection; rows of
        ``class_name`` fetched before are reused while its change counter allows (``leanselect``)."""
        counters = changes.observed() if class_name is not None else None
        counter = None if counters is None or class_name is None else counters.get(class_name)
        return leanselect.fetch_built(self._driver, built, self.dialect, self.memo, counter)

    def fetch_tuples(self, statement: Select[Any]) -> Sequence[tuple[Any, ...]]:
        return leanselect.fetch_tuples(self._driver, statement, self.dialect)

    def driver(self) -> sqlite3.Connection:
        """Autocommit ``sqlite3`` connection for the prepared statements; always ``fetchall``/close
        cursors so no read snapshot stays open."""
        return self._driver

    def close(self) -> None:
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            self._conn = None


class _InlineRead:
    """``Database.read()`` on SQLite: a plain async context manager rather than an
    ``@asynccontextmanager`` generator, whose enter and exit cost several microseconds on a
    request that opens two or three reads (who is asking, then what they asked for)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: InlineConnection) -> None:
        self._conn = conn

    async def __aenter__(self) -> AsyncConnection:
        return self._conn  # type: ignore[return-value]

    async def __aexit__(self, *exc: object) -> None:
        self._conn.close()


class Database:
    def __init__(
        self, url: str, *, echo: bool = False, read_memo_rows: int = 4096, session_memo_entries: int = 10_000
    ) -> None:
        """``read_memo_rows``: how many decoded rows the SQLite read path remembers (0: none);
        ``session_memo_entries``: how many resolved sessions it remembers (0: none)."""
        self.url = url
        self.memo = RowMemo(read_memo_rows)
        self.sessions = SessionMemo(session_memo_entries)
        self.engine: AsyncEngine = create_engine(url, echo=echo, immediate=True)
        self.read_engine: AsyncEngine = (
            create_engine(url, echo=echo, immediate=False) if url.startswith("sqlite") else self.engine
        )
        self.dialect: str = self.engine.dialect.name
        self._inline: Engine | None = create_inline_reader(url, echo=echo) if url.startswith("sqlite") else None
        self._raw: sqlite3.Connection | None = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction; commits on normal exit, rolls back on any exception.

        The calling request forgets the change counters it has read, before and after, so it
        never reuses an object from before its own write (``gateway.store.changes``)."""
        changes.forget()
        try:
            async with self.engine.begin() as conn:
                yield conn
        finally:
            changes.forget()

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read-only view; on SQLite an inline connection (see ``InlineConnection``)."""
        if self._inline is not None:
            return _InlineRead(InlineConnection(self._inline, self._driver(), self.memo, self.sessions))
        return self.read_engine.connect()

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _driver(self) -> sqlite3.Connection:
        if self._raw is None:
            path = self.url.split(":///", 1)[1]
            raw = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            raw.execute("PRAGMA query_only=ON")
            raw.execute("PRAGMA busy_timeout=10000")
            install_sqlite_functions(raw)
            self._raw = raw
        return self._raw

    async def durability(self) -> dict[str, object]:
        """What the write path actually runs with (catalog E01): WAL + synchronous=FULL on SQLite,
        ``synchronous_commit`` on PostgreSQL. Reported by ``/health/ready``."""
        async with self.write() as conn:
            if self.dialect == "sqlite":
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
                return {
                    "journal_mode": mode,
                    "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(int(sync or 0), str(sync)),
                    "durable": mode == "wal" and int(sync or 0) >= 2,
                }
            commit = (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()
            return {"synchronous_commit": commit, "durable": commit in ("on", "remote_write", "remote_apply")}

    async def dispose(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._inline is not None:
            self._inline.dispose()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
