"""Engine creation with the durability settings the contract promises.

SQLite runs WAL with ``synchronous=FULL`` so that anything acknowledged (a 201, an
HL7 ACK) survives power loss; foreign keys are switched on per connection.
PostgreSQL uses asyncpg with pre-ping so the app recovers after a server restart.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import await_

from gateway.native.query.regex import install_sqlite_functions

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    # A REPLACE's implicit delete then fires delete triggers too (migration 0011's counters).
    "PRAGMA recursive_triggers=ON",
)


def _json_serializer(value: Any) -> str:
    return msgspec.json.encode(value).decode()


JSON_CODECS: dict[str, Any] = {"json_serializer": _json_serializer, "json_deserializer": msgspec.json.decode}
"""msgspec for JSON columns: several times faster than the stdlib on the read path."""


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # aiosqlite's adapter manages transactions itself; pysqlite's implicit BEGIN is disabled
    # so that SQLAlchemy's explicit BEGIN (IMMEDIATE for writes) is what runs.
    cursor = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()
    install_sqlite_functions(dbapi_conn)


def _sqlite_on_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_on_begin_deferred(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def create_engine(url: str, *, echo: bool = False, immediate: bool = True) -> AsyncEngine:
    """``immediate`` makes SQLite transactions take the write lock at BEGIN (write engine);
    the read engine uses deferred BEGIN so readers never queue behind writers (WAL)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": 30},
            pool_size=4,
            max_overflow=4,
            **JSON_CODECS,
        )
        sync_engine: Engine = engine.sync_engine
        event.listen(sync_engine, "connect", _sqlite_on_connect)

        @event.listens_for(sync_engine, "connect")
        def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        event.listen(sync_engine, "begin", _sqlite_on_begin if immediate else _sqlite_on_begin_deferred)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        **JSON_CODECS,
    )
    if engine.dialect.driver == "asyncpg":
        engine.sync_engine.dialect.do_ping = _ping_in_one_round_trip  # type: ignore[method-assign,assignment]
    return engine


def _ping_in_one_round_trip(dbapi_conn: Any) -> bool:
    """The pool's pre-ping on every checkout, as one statement instead of three.

    SQLAlchemy's asyncpg adapter pings inside BEGIN ... ROLLBACK, for PgBouncer's transaction mode
    (sqlalchemy#10226): three round trips before every transaction of every request, and of every
    HL7 message a lone sender's connection stores (13 statements a message besides them, traced).
    The gateway cannot run behind PgBouncer's transaction mode anyway: its write paths keep asyncpg's
    prepared statements per server connection (``store.leanwrite``). So the ping is the bare ``;``
    that SQLAlchemy's wraps, and a failure goes through the adapter's own translation, into the DBAPI
    error the pool takes for a disconnect (it then replaces the connection: tested with a server-side
    kill in tests/unit/test_engine_ping.py)."""
    try:
        await_(dbapi_conn.driver_connection.fetchrow(";"))
    except Exception as error:
        dbapi_conn._handle_exception(error)
    return True


def dialect_name(engine: AsyncEngine) -> str:
    return engine.dialect.name


def create_inline_reader(url: str, *, echo: bool = False) -> Engine:
    """A synchronous pysqlite engine for inline reads (see ``Database.read``)."""
    from sqlalchemy import create_engine as create_sync_engine
    from sqlalchemy.pool import QueuePool

    sync_url = url.replace("sqlite+aiosqlite", "sqlite+pysqlite", 1)
    engine = create_sync_engine(
        sync_url,
        echo=echo,
        poolclass=QueuePool,
        pool_size=2,
        max_overflow=8,
        connect_args={"check_same_thread": False, "timeout": 30},
        **JSON_CODECS,
    )
    event.listen(engine, "connect", _sqlite_on_connect)

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    event.listen(engine, "begin", _sqlite_on_begin_deferred)
    return engine


WRITER_CACHE_KIB = 64 * 1024
"""Page cache of a synchronous writer connection (one per writer engine)."""


def _writer_pragmas(dbapi_conn: Any) -> None:
    # A SAVEPOINT (one per HL7 message in a group) keeps each page's prior content in a
    # statement journal, by default a temporary file: strace of the HL7 writer showed a file
    # created and unlinked per group and about 280 pwrite64 calls per message. In memory it is
    # a copy. It holds at most the pages one group changes, and nothing in it is needed after
    # a crash (the WAL, not the statement journal, is what makes a commit durable).
    dbapi_conn.execute("PRAGMA temp_store=MEMORY")
    # The writer revisits the index pages of the tables it appends to on every group; with the
    # default 2000-page cache a growing store sent it back to the file (about 57 pread64 a message).
    dbapi_conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")


def create_sync_writer(url: str, *, echo: bool = False) -> Engine:
    """A synchronous pysqlite engine with one connection whose transactions BEGIN IMMEDIATE.

    For group commits that run a whole batch in one worker-thread hop (the read audit,
    ``gateway.audit.reads``) rather than one aiosqlite hop per statement. Same pragmas as
    every other connection: WAL, ``synchronous=FULL`` (a commit is durable when it returns).
    """
    from sqlalchemy import create_engine as create_sync_engine
    from sqlalchemy.pool import QueuePool

    sync_url = url.replace("sqlite+aiosqlite", "sqlite+pysqlite", 1)
    engine = create_sync_engine(
        sync_url,
        echo=echo,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        connect_args={"check_same_thread": False, "timeout": 30},
        **JSON_CODECS,
    )
    event.listen(engine, "connect", _sqlite_on_connect)

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        _writer_pragmas(dbapi_conn)

    event.listen(engine, "begin", _sqlite_on_begin)
    return engine
