"""Group commit for the HL7 v2 door: many messages, one write transaction, ACKs after its commit.

A durable commit (an fsync on SQLite with ``synchronous=FULL``, a WAL flush on
PostgreSQL) and the BEGIN/COMMIT round trips cost the same for one message as for
twenty. Messages that arrive while a transaction is running (on several connections,
or pipelined on one) wait in ``pending`` and go into the next transaction together;
nobody waits for a timer, so a lone sender sees no added latency.

Rules the tests rely on:

* Jobs run one after another, in submission order, in the same transaction, so a later
  message sees an earlier one's rows (same control id twice in one group: the second is a
  duplicate of the first) and per-connection order is kept.
* A job's future resolves only after the COMMIT that holds its writes returned: the ACK
  built from it is never written to the socket before the data is durable.
* A job that raises does not take the others down: the transaction is rolled back and
  re-run without it (optimistic, no savepoint per message, since failures are rare). A
  ``Conflict``/``IntegrityError`` (a concurrent writer outside this process on PostgreSQL)
  makes that job try again in the re-run, up to ``attempts`` times, before it fails.
* A job whose connection was lost (``DBAPIError.connection_invalidated``: the server ended a
  kept PostgreSQL connection) is run again like a conflict, on a new connection.
* So is a job PostgreSQL aborted to break a deadlock or a serialization clash with another writer
  (SQLSTATE 40P01, 40001: another gateway process on the same database); one that still meets
  it after ``attempts`` runs fails as a ``Conflict`` ('records busy', not an internal error).
* When BEGIN or COMMIT itself fails (database locked or gone), every job of the group
  gets that exception; nothing of the group is committed, so no sender is told AA.
* A job first runs without savepoints (``_Optimistic``); one that fails inside a nested block
  re-runs the group with its savepoints taken, and ends exactly as it would have with them.
* AuditLog entries a job gives to ``audit.writer.append_later`` are chained at the end of
  the group, in job order, under one head lock (one INSERT and one head move per group
  instead of per message), before the COMMIT; a re-run collects them afresh.
* The rows jobs insert (results, their versions, the message log) are staged and inserted
  with one statement per table at the end of the group (``hl7v2.staged``), and what a group
  of two or more will look up is read ahead with one statement per kind before its first job
  (``hl7v2.prefetch``); if either fails, the group is re-run without them.

On SQLite a group runs on a synchronous connection (``engine.create_sync_writer``): the
jobs are the same coroutines, driven to completion through ``_SyncConnection``, whose
awaits never suspend and whose statements go to the driver through ``store.leanwrite``.
With the async driver every statement is a round trip to aiosqlite's thread, and on a busy
two-core machine that hand-off costs more than the statement (measured: about 2 ms per
statement under load, against 0.1 ms of SQLite work).
The statements run inline on the loop; BEGIN IMMEDIATE and COMMIT, which wait (for the
lock, for the fsync), run in a worker thread (``_commit_sync`` says why). A job that does
suspend (it awaited something real) is a programming error the sync path detects; the
group is then run again on the async path, so correctness never depends on the shortcut.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import faults
from gateway.audit.writer import AuditEntry, append_many, collected
from gateway.errors import Conflict
from gateway.faults import FaultPoint
from gateway.hl7v2.prefetch import GroupReads, reading
from gateway.hl7v2.staged import InsertsFailed, StagedInserts, staging
from gateway.store import leanwrite
from gateway.store.database import Database
from gateway.store.engine import create_sync_writer

__all__ = ["GroupCommitter", "Job", "RetryableFailure"]

log = logging.getLogger("gateway.hl7v2.commit")

Job = Callable[[AsyncConnection], Awaitable[Any]]
"""Writes one message's rows on the given connection and returns its outcome; may be re-run."""

RetryableFailure = (Conflict, IntegrityError)

TRANSIENT_STATES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the transaction was aborted to resolve a
clash with another writer, and running it again is the documented remedy."""

ReadAhead = Callable[[AsyncConnection, GroupReads, list[Any]], Awaitable[None]]
"""Reads what a group's jobs will look up, given what each job was submitted with (``hl7v2.prefetch``)."""


class ReadAheadFailed(Exception):
    """Reading a group's lookups ahead failed; the group is re-run without it."""


@dataclass(eq=False, slots=True)
class _Pending:
    job: Job
    future: asyncio.Future[Any]
    work: Any = None
    """What the job was made from, for ``GroupCommitter.read_ahead``."""
    failures: int = 0
    savepoints: bool = False
    """Run with real savepoints: an earlier run failed inside one (see ``_Optimistic``)."""
    result: Any = None
    error: BaseException | None = field(default=None)


class _JobFailed(Exception):
    """Carries the failing entry out of the transaction so the context manager rolls back."""

    def __init__(self, entry: _Pending, error: BaseException) -> None:
        super().__init__(str(error))
        self.entry = entry
        self.error = error


class _Suspended(Exception):
    """A job awaited something that really suspends: it cannot run on the sync path."""


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends to completion, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise _Suspended()


class _NeedsSavepoint(Exception):
    """A job failed inside ``begin_nested`` while its savepoints were skipped: the group is rolled
    back and run again, that job with real savepoints (``_Optimistic``)."""


class _Optimistic:
    """``begin_nested`` without the SAVEPOINT, for a job on its first run.

    The HL7 write path opens a savepoint around each message's effects (and the store one around
    each row it changes) so that a message that cannot be applied leaves nothing behind. That is
    two statements per savepoint, each a round trip on PostgreSQL, in every message, for a
    failure that is rare. So a job first runs without them; if anything is raised inside such a
    block the group is rolled back and re-run, and this job then takes its savepoints for real
    and ends exactly as it would have with them (for example answered AE, its effects undone)."""

    async def __aenter__(self) -> _Optimistic:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and isinstance(exc, Exception) and not isinstance(exc, _NeedsSavepoint | InsertsFailed):
            raise _NeedsSavepoint() from exc


class _SyncNested:
    """A SAVEPOINT sent straight to the driver (SQLAlchemy's ``begin_nested`` costs more Python than
    the statement); SQLAlchemy's own transaction bookkeeping is not involved, as nothing in the
    write path asks it about savepoints."""

    def __init__(self, driver: sqlite3.Connection, name: str) -> None:
        self._driver = driver
        self._name = name

    async def __aenter__(self) -> _SyncNested:
        self._driver.execute(f"SAVEPOINT {self._name}")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self._driver.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
        self._driver.execute(f"RELEASE SAVEPOINT {self._name}")


class _SyncConnection:
    """The part of ``AsyncConnection`` the HL7 write path uses, over a synchronous connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        self._driver = driver
        self._savepoints = 0
        self.savepoints = False
        """Whether ``begin_nested`` takes a real savepoint (for the job now running; see ``_Optimistic``)."""

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        lean = leanwrite.run(self._driver, statement, parameters, self.dialect)
        return lean if lean is not None else self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._conn.exec_driver_sql(statement, parameters)

    def begin_nested(self) -> _SyncNested | _Optimistic:
        if not self.savepoints:
            return _Optimistic()
        self._savepoints += 1
        return _SyncNested(self._driver, f"hl7_sp_{self._savepoints}")


class _PgConnection:
    """The part of ``AsyncConnection`` the HL7 write path uses, on PostgreSQL: the statements
    ``store.leanwrite`` covers go straight to the transaction's asyncpg connection
    (``leanwrite.run_asyncpg``), the others through SQLAlchemy on the same connection.

    The first statement of the transaction always goes through SQLAlchemy: its asyncpg adapter
    opens the transaction lazily, with that statement, and what runs on the driver directly
    must run inside it."""

    def __init__(self, conn: AsyncConnection, driver: Any) -> None:
        self._conn = conn
        self._driver = driver
        self._begun = False
        self.dialect = conn.dialect
        self.savepoints = False
        """As ``_SyncConnection.savepoints``."""

    @classmethod
    async def over(cls, conn: AsyncConnection) -> _PgConnection:
        return cls(conn, (await conn.get_raw_connection()).driver_connection)

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if self._begun:
            lean = await leanwrite.run_asyncpg(self._driver, statement, parameters, self.dialect)
            if lean is not None:
                return lean
        self._begun = True
        return await self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        self._begun = True
        return await self._conn.exec_driver_sql(statement, parameters)

    def begin_nested(self) -> Any:
        if not self.savepoints:
            return _Optimistic()
        self._begun = True
        return self._conn.begin_nested()


class GroupCommitter:
    """Runs submitted jobs in shared write transactions; see the module docstring."""

    def __init__(self, db: Database, *, max_group: int = 64, attempts: int = 3, wait_inline: bool = False) -> None:
        self.db = db
        self.max_group = max_group
        self.attempts = attempts
        self.wait_inline = wait_inline
        """BEGIN and COMMIT block the loop instead of going to a worker thread: right for a process
        that does nothing else (``writer_process``), where the hand-off is pure cost and frames that
        arrive meanwhile simply join the next group."""
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sync: Engine | None = create_sync_writer(db.url) if db.dialect == "sqlite" else None
        self._pg = db.dialect == "postgresql"
        self._held_async: AsyncConnection | None = None
        """With ``wait_inline`` on the async path (PostgreSQL), the connection kept between groups: a
        checkout from the pool pings the server first (``pool_pre_ping``), three round trips."""
        self._held: Connection | None = None
        """With ``wait_inline``, the writer's connection between groups: checking it out of the pool
        and back in (a reset each time) cost as much as a group's BEGIN and COMMIT statements."""
        self.read_ahead: ReadAhead | None = None
        """Set by the ingest: reads a group's lookups ahead (``hl7v2.prefetch``), for groups of two or more."""
        self.groups = 0
        """Transactions committed (for tests and the bench: messages / groups = mean group size)."""
        self.jobs = 0
        self.reruns = 0
        """Groups rolled back and run again (a job failed, or the staged rows or reads ahead did)."""

    def submit(self, job: Job, work: Any = None) -> asyncio.Future[Any]:
        """Queue ``job`` (synchronously, so submission order is call order) and return its future;
        ``work``, what the job was made from, is handed to ``read_ahead``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Pending(job, future, work))
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush())
        return future

    async def run(self, job: Job) -> Any:
        """Submit and wait for the commit; raises what the job (or the transaction) raised."""
        return await self.submit(job)

    async def _flush(self) -> None:
        while self._pending:
            group, self._pending = self._pending[: self.max_group], self._pending[self.max_group :]
            try:
                await self._commit(group)
            except BaseException as exc:  # cancelled, or a bug here: nobody may wait forever
                for entry in group:
                    if not entry.future.done():
                        entry.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                if not isinstance(exc, Exception):
                    raise

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """``db.write()``; with ``wait_inline``, on a connection kept from one group to the next (any
        failure closes it: the next group checks out a fresh one)."""
        if not self.wait_inline:
            async with self.db.write() as conn:
                yield conn
            return
        conn, self._held_async = self._held_async or await self.db.engine.connect(), None
        try:
            async with conn.begin():
                yield conn
        except BaseException:
            await conn.close()
            raise
        self._held_async = conn

    async def aclose(self) -> None:
        """``dispose``, closing the kept async connection first."""
        held, self._held_async = self._held_async, None
        if held is not None:
            await held.close()
        self.dispose()

    def dispose(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None
        if self._sync is not None:
            self._sync.dispose()

    async def _commit(self, group: list[_Pending]) -> None:
        if self._sync is not None:
            try:
                await self._commit_sync(group)
                return
            except _Suspended:
                log.error("hl7v2: a write job suspended on the sync path; running the group on the async path")
                for entry in group:
                    entry.failures = 0
        await self._commit_async(group)

    def _begin(self) -> Connection:
        """A connection from the one-connection writer pool, in BEGIN IMMEDIATE (waits for the write lock)."""
        assert self._sync is not None
        conn, self._held = self._held or self._sync.connect(), None
        try:
            conn.begin()
        except BaseException:
            conn.close()
            raise
        return conn

    async def _begin_off_loop(self) -> Connection:
        """``_begin`` in a worker thread. If the waiter is cancelled (shutdown) the thread still
        finishes; its connection is then rolled back and returned, so the lock is not kept."""
        begun = asyncio.get_running_loop().run_in_executor(None, self._begin)
        try:
            return await asyncio.shield(begun)
        except asyncio.CancelledError:
            begun.add_done_callback(_close_abandoned)
            raise

    @staticmethod
    def _commit_and_close(conn: Connection) -> None:
        try:
            conn.commit()
        finally:
            conn.close()

    async def _commit_sync(self, group: list[_Pending]) -> None:
        """``_commit_async`` with the statements run inline on the event loop's thread.

        Only the two steps that wait go to a worker thread: BEGIN IMMEDIATE (it may wait for
        another writer's lock, which must not stall the loop that writer needs) and COMMIT
        (the fsync; the loop parses the next messages meanwhile). The statements themselves
        are CPU work under the GIL wherever they run; in a worker thread they fought the loop's
        parsing for the GIL at every ``sqlite3`` call, and each hand-over could wait out the
        interpreter's 5 ms switch interval. Measured with live servers side by side (the
        same load, alternating rounds, medians): 8 connections with one message in flight each 156 -> 174
        and 189 -> 229 msg/s in two runs; 1 connection unchanged (122 -> 125, 175 -> 175).
        """
        live = list(group)
        stage = True
        while live:
            try:
                sync_conn = self._begin() if self.wait_inline else await self._begin_off_loop()
            except Exception as exc:  # database locked or gone: none of the group is durable
                for entry in live:
                    _resolve(entry.future, None, exc)
                return
            try:
                sync = _SyncConnection(sync_conn)
                conn = cast(AsyncConnection, sync)
                audit: list[AuditEntry] = []
                staged = StagedInserts() if stage else None
                reads = _drive(self._read_ahead(conn, live)) if stage else None
                with collected(audit), staging(staged), reading(reads):
                    for entry in live:
                        sync.savepoints = entry.savepoints
                        try:
                            _drive(_stage_for(entry, staged, reads, conn))
                            entry.result = _drive(entry.job(conn))  # type: ignore[arg-type]
                        except _Suspended:
                            raise
                        except Exception as exc:
                            raise _JobFailed(entry, exc) from exc
                if staged:
                    _drive(staged.flush(conn))
                if audit:
                    _drive(append_many(conn, audit))
                faults.reached(FaultPoint.IN_TRANSACTION)
            except BaseException as failed:
                sync_conn.rollback()
                sync_conn.close()
                if _staging_failed(failed):
                    stage, self.reruns = False, self.reruns + 1
                    continue
                if not isinstance(failed, _JobFailed):
                    raise  # _Suspended (the async path re-runs the group) or a bug
                if self._give_up(failed):
                    live.remove(failed.entry)
                    _resolve(failed.entry.future, None, failed.error)
                continue
            try:
                if self.wait_inline:
                    try:
                        sync_conn.commit()
                    except BaseException:
                        sync_conn.close()
                        raise
                    self._held = sync_conn
                else:
                    await asyncio.to_thread(self._commit_and_close, sync_conn)
            except Exception as exc:  # COMMIT failed: nothing of the group is durable
                for entry in live:
                    _resolve(entry.future, None, exc)
                return
            faults.reached(FaultPoint.COMMITTED)
            self.groups += 1
            self.jobs += len(live)
            for entry in live:
                _resolve(entry.future, entry.result, None)
            return

    async def _read_ahead(self, conn: AsyncConnection, live: list[_Pending]) -> GroupReads | None:
        """The group's lookups read ahead, for a group of two or more (for one, reading ahead is as
        many statements as the job's own lookups)."""
        if self.read_ahead is None or len(live) < 2:
            return None
        reads = GroupReads()
        try:
            await self.read_ahead(conn, reads, [entry.work for entry in live])
        except Exception as exc:
            raise ReadAheadFailed(f"reading a group's lookups ahead failed: {exc}") from exc
        return reads

    def _give_up(self, failed: _JobFailed) -> bool:
        self.reruns += 1
        entry = failed.entry
        if isinstance(failed.error, _NeedsSavepoint) and not entry.savepoints:
            entry.savepoints = True  # not a failure: the next run takes its savepoints
            return False
        entry.failures += 1
        error = failed.error
        transient = _transient(error)
        retry = (isinstance(error, RetryableFailure) or _connection_lost(error) or transient) and (
            entry.failures < self.attempts
        )
        log.debug("hl7v2: group rolled back (%s); re-running", type(error).__name__)
        if not retry and transient:
            failed.error = Conflict(f"records busy: another writer kept clashing with this message ({error})")
        return not retry

    async def _commit_async(self, group: list[_Pending]) -> None:
        live = list(group)
        stage = True
        while live:
            try:
                async with self._transaction() as conn:
                    lean = await _PgConnection.over(conn) if self._pg else None
                    on = conn if lean is None else cast(AsyncConnection, lean)
                    audit: list[AuditEntry] = []
                    staged = StagedInserts() if stage else None
                    reads = await self._read_ahead(on, live) if stage else None
                    with collected(audit), staging(staged), reading(reads):
                        for entry in live:
                            try:
                                if lean is not None:
                                    lean.savepoints = entry.savepoints
                                await _stage_for(entry, staged, reads, on)
                                entry.result = await entry.job(on)
                            except Exception as exc:
                                raise _JobFailed(entry, exc) from exc
                    if staged:
                        await staged.flush(on)
                    if audit:
                        await append_many(on, audit)
                    faults.reached(FaultPoint.IN_TRANSACTION)
            except (InsertsFailed, ReadAheadFailed):
                stage, self.reruns = False, self.reruns + 1
                continue
            except _JobFailed as failed:
                if _staging_failed(failed):
                    stage, self.reruns = False, self.reruns + 1
                    continue
                if self._give_up(failed):
                    live.remove(failed.entry)
                    failed.entry.future.set_exception(failed.error)
                continue
            except Exception as exc:  # BEGIN/COMMIT failed: none of the group is durable
                for entry in live:
                    entry.future.set_exception(exc)
                return
            faults.reached(FaultPoint.COMMITTED)
            self.groups += 1
            self.jobs += len(live)
            for entry in live:
                entry.future.set_result(entry.result)
            return


async def _stage_for(
    entry: _Pending, staged: StagedInserts | None, reads: GroupReads | None, conn: AsyncConnection
) -> None:
    """A job with real savepoints inserts its own rows (rolling back to one must undo them), and
    the rows staged before it go in first, so that its lookups find them (``hl7v2.staged``); it
    reads the store itself too (``hl7v2.prefetch``)."""
    if reads is not None:
        reads.active = not entry.savepoints
    if staged is None:
        return
    staged.active = not entry.savepoints
    if entry.savepoints and staged:
        await staged.flush(conn)


def _staging_failed(failed: BaseException) -> bool:
    """The group's staged rows could not be inserted: it is re-run with each job inserting its own
    (not a failure of the job that happened to flush them)."""
    return isinstance(failed, InsertsFailed | ReadAheadFailed) or (
        isinstance(failed, _JobFailed) and isinstance(failed.error, InsertsFailed)
    )


def _transient(error: BaseException) -> bool:
    """PostgreSQL aborted the job's transaction to resolve a clash with another writer
    (``TRANSIENT_STATES``): the lean asyncpg path wraps the driver's exception, SQLAlchemy its
    adapter's, and both carry the SQLSTATE."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in TRANSIENT_STATES


def _connection_lost(error: BaseException) -> bool:
    """The connection went away under the job (a kept PostgreSQL connection the server ended):
    the group is rolled back with it, and the job is worth running again on a new one."""
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _close_abandoned(begun: asyncio.Future[Connection]) -> None:
    if not begun.cancelled() and begun.exception() is None:
        conn = begun.result()
        conn.rollback()
        conn.close()


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
