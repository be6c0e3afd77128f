"""The HL7 v2 door's writes in a process of their own, so that storing and parsing use two cores.

Why: a message's life is CPU work under one interpreter lock, about half parse and map,
half store (the statements, the audit chain, the SQLite calls themselves). With both in
the serve process, a feed over several connections was bound by that one core whatever
group commit saved on fsyncs: ``bench/hl7_ingest.py`` measured full ingest at about 0.35
of the parse-and-ACK baseline. A thread does not help, since the statements hold the
lock between SQLite calls (``committer`` measured worker threads fighting the loop for it).
A second process does: the serve process parses, maps and answers; this one runs the
group committer (``committer.GroupCommitter``) exactly as the serve process would, on
its own connection to the same database. Only when there is something to overlap: a
message that finds nothing in flight (a lone sender waiting for each ACK) is stored in
the serve process itself, where the hand-over would only add latency (``Ingest.store``).

How: ``serve`` calls ``WriterProcess.fork`` before it creates the app, while the process
has one thread and no event loop, so ``os.fork`` is safe and the child starts with
everything imported (no second start-up). The two talk over a socket pair in frames of
an 8-byte length and a pickle: ``(seq, work)`` one way (``ingest.Work``, plain data),
``(seq, outcome, payload)`` back. The child submits each work to its committer in the
order received, so per-connection order and commit order are those of the serve
process, and answers each after the COMMIT that holds it; the serve process writes
the ACK only then, as before.

One group at a time, on one connection. Two groups in flight on PostgreSQL (the next group's
reads and jobs running while the one before inserts its rows and commits, each group waiting for
the one before it to end before its own inserts, so that commits keep their order) was measured
side by side at 8 connections: 0.97x. The order leaves the groups' inserts and commits one after
another anyway, and starting the next group early made the groups smaller (more statements and
more PostgreSQL work a message: 1.14 -> 1.37 ms).

Failure rules the tests rely on:

* The serve process dies (SIGKILL included): the kernel kills the writer too
  (``PR_SET_PDEATHSIG``), so no orphan keeps a database connection. What it had not
  committed is rolled back; what it had, the sender resends and gets its original ACK.
* The writer dies on its own: every message in flight is answered AE (``WriterLost``;
  whether it was committed is unknown, and a resend settles it either way), and the
  serve process goes on storing in-process (``running`` turns False and ``Ingest``
  falls back to its own committer). A crash point (``gateway.faults``) reached in the
  writer ends the serve process with the same status, as it would have in-process.
* A failed job comes back as its kind: ``Conflict`` for a write conflict that outlived
  its retries (``Ingest`` answers 'records busy'), ``WriterFailure`` for anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, cast

from gateway import faults
from gateway.errors import Conflict

if TYPE_CHECKING:
    from gateway.hl7v2.ingest import Reply, Work

__all__ = ["WriterFailure", "WriterLost", "WriterProcess"]

log = logging.getLogger("gateway.hl7v2.writer")

_HEADER = struct.Struct("!Q")
_PR_SET_PDEATHSIG = 1


class WriterLost(Exception):
    """The writer process ended with this message in flight; its outcome is unknown."""


class WriterFailure(Exception):
    """A job failed in the writer process (the message was not applied); carries its description."""


class _Outcome(IntEnum):
    """How a job ended in the writer, as sent back with its sequence number."""

    REPLY = 0
    CONFLICT = 1
    FAILED = 2


class _Framed(asyncio.Protocol):
    """Length-prefixed pickles over a stream. ``on_frame`` for each frame; ``on_end`` once, when
    the other side shuts its writing down or the connection is lost (this side may still write
    after an EOF: the writer answers what it holds after the serve process said it is done)."""

    def __init__(self, on_frame: Callable[[Any], None], on_end: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._on_end = on_end
        self._ended = False
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            frame = pickle.loads(memoryview(buffer)[start + _HEADER.size : end])
            start = end
            self._on_frame(frame)
        del buffer[:start]

    def eof_received(self) -> bool:
        self._end()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_end()

    def send(self, value: Any) -> None:
        assert self.transport is not None
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.transport.writelines((_HEADER.pack(len(body)), body))


class WriterProcess:
    """The serve process's side: submit work, get the committed reply back."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock: socket.socket | None = sock
        self._channel: _Framed | None = None
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._seq = 0
        self._closing = False
        self._gone = asyncio.Event()
        self.running = False
        """True from ``start`` until the writer ends; ``Ingest`` stores in-process otherwise."""

    @classmethod
    def fork(cls, database_url: str) -> WriterProcess:
        """Fork the writer. Call it while the process has one thread and no running loop: a fork
        with other threads running could copy a lock one of them holds (RuntimeError then)."""
        _let_threads_end(FORK_WAIT_SECONDS)
        if threading.active_count() > 1:
            raise RuntimeError(f"{threading.active_count()} threads are running")
        parent_end, child_end = socket.socketpair()
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the writer
            status = 1
            try:
                parent_end.close()
                _die_with(parent_pid)
                # Ctrl-C or a service manager's SIGTERM reach the whole group: the writer finishes
                # what it holds and ends when the serve process closes the socket (or dies).
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                asyncio.run(_serve(child_end, database_url))
                status = 0
            except BaseException:
                log.exception("hl7v2 writer: ended by an error")
            finally:
                logging.shutdown()
                os._exit(status)  # never run the parent's clean-ups (its connections, its atexit)
        child_end.close()
        return cls(pid, parent_end)

    async def start(self) -> None:
        """Attach the socket to the running loop; from now on ``Ingest`` sends its writes here."""
        if self._sock is None or self._channel is not None:
            return
        loop = asyncio.get_running_loop()
        channel = _Framed(self._answered, self._lost)
        await loop.create_connection(lambda: channel, sock=self._sock)
        self._channel = channel
        self.running = True

    @property
    def idle(self) -> bool:
        """Nothing in flight: every work sent has been answered (its transaction has ended)."""
        return not self._pending

    def submit(self, work: Work) -> asyncio.Future[Reply]:
        assert self._channel is not None and self.running
        self._seq += 1
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = future
        self._channel.send((self._seq, work))
        return future

    def _answered(self, frame: tuple[int, int, Any]) -> None:
        seq, outcome, payload = frame
        future = self._pending.pop(seq, None)
        if future is None or future.done():
            return
        if outcome == _Outcome.REPLY:
            future.set_result(payload)
        elif outcome == _Outcome.CONFLICT:
            future.set_exception(Conflict(str(payload)))
        else:
            future.set_exception(WriterFailure(str(payload)))

    def _lost(self) -> None:
        self.running = False
        status = _reap(self.pid)
        if status == faults.CRASH_STATUS:
            faults.crash()  # a crash point fired in the writer: the gateway dies there, as in-process
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WriterLost())
        if self._channel is not None and self._channel.transport is not None:
            self._channel.transport.close()
        self._gone.set()
        if not self._closing:
            log.error(
                "hl7v2: the writer process ended (status %s) with %d message(s) in flight; storing in-process",
                status,
                len(pending),
            )

    async def close(self) -> None:
        """Tell the writer there is no more work, let it answer what it holds, and wait for it to exit
        (at most ``CLOSE_SECONDS``, then it is killed: what it had not committed is rolled back)."""
        self._closing = True
        channel = self._channel
        if channel is None or channel.transport is None:  # never started
            if self._sock is not None:
                self._sock.close()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _reap(self.pid)
            return
        if not self._gone.is_set():
            channel.transport.write_eof()
            try:
                async with asyncio.timeout(CLOSE_SECONDS):
                    await self._gone.wait()
            except TimeoutError:
                log.error("hl7v2: the writer process did not finish within %s s; killing it", CLOSE_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                _reap(self.pid)


CLOSE_SECONDS = 10.0
FORK_WAIT_SECONDS = 5.0


def _let_threads_end(seconds: float) -> None:
    """Wait for threads that are ending: the migrations' aiosqlite worker outlives its engine's
    ``dispose`` by a moment, and a loaded machine stretches that moment."""
    deadline = time.monotonic() + seconds
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


_reaped: dict[int, int | None] = {}


def _reap(pid: int) -> int | None:
    """The writer's exit status (minus the signal number), waiting briefly for the exit itself."""
    if pid in _reaped:
        return _reaped[pid]
    for _ in range(200):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            _reaped[pid] = None
            return None
        if done:
            _reaped[pid] = code = os.waitstatus_to_exitcode(status)
            return code
        time.sleep(0.01)  # the socket closes a moment before the exit status is ready
    return None


def _die_with(parent_pid: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux); elsewhere the writer
    notices the closed socket instead."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


async def _serve(sock: socket.socket, database_url: str) -> None:
    """The writer: run each received work through a group committer; answer after its commit."""
    from gateway.hl7v2.committer import GroupCommitter, RetryableFailure
    from gateway.hl7v2.ingest import ATTEMPTS, Ingest
    from gateway.store.database import Database

    db = Database(database_url)
    ingest = Ingest(db, committer=GroupCommitter(db, attempts=ATTEMPTS, wait_inline=True))
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    in_flight: set[asyncio.Future[Any]] = set()
    channel: _Framed

    def received(frame: tuple[int, Work]) -> None:
        seq, work = frame
        try:
            future = ingest.committer.submit(ingest.job(work), work)
        except Exception as exc:  # a bug: the serve process must still get an answer
            future = loop.create_future()
            future.set_exception(exc)
        in_flight.add(future)
        future.add_done_callback(lambda done: answer(seq, done))

    def answer(seq: int, done: asyncio.Future[Any]) -> None:
        in_flight.discard(done)
        error = done.exception()
        if error is None:
            frame: tuple[int, int, Any] = (seq, _Outcome.REPLY, done.result())
        elif isinstance(error, RetryableFailure):
            frame = (seq, _Outcome.CONFLICT, str(error)[:500])
        else:
            log.error("hl7v2 writer: a job failed", exc_info=error)
            frame = (seq, _Outcome.FAILED, f"{type(error).__name__}: {str(error)[:500]}")
        if channel.transport is not None and not channel.transport.is_closing():
            channel.send(frame)

    def no_more_work() -> None:
        if not ended.done():
            ended.set_result(None)

    channel = _Framed(received, no_more_work)
    await loop.create_connection(lambda: channel, sock=sock)
    try:
        await ended
        if in_flight:  # the serve process is stopping: answer what was taken (it waits for it)
            await asyncio.wait(set(in_flight))
    finally:
        await ingest.committer.aclose()
        await db.dispose()
        if channel.transport is not None:
            channel.transport.close()
