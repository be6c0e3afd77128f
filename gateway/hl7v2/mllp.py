"""The MLLP listener: asyncio streams, one task per connection, messages in order per connection.

Framing faults (stray bytes, an unterminated frame, a frame over the size limit, a
reset) are logged with sizes only, never content, and never end the listener or
another connection. An oversize frame is answered AR and logged as a dead letter; an
idle connection is closed after ``idle_seconds``, and one whose message is not complete
``frame_seconds`` after its first byte (a sender trickling bytes, which never looks idle)
is closed too, the partial frame discarded and logged by size. Each ACK is written only after
``Ingest`` returns, i.e. after the transaction holding the message committed.

Pipelining: a sender may send several frames before reading ACKs. The reader submits
each message to ``Ingest`` as soon as its frame is complete (submission order is commit
order, so one connection's messages apply in order, possibly in one group transaction);
a second task writes the ACKs in that same order as their commits complete. At most
``max_in_flight`` messages per connection wait for their ACK; past that the reader stops
reading (TCP backpressure) instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable
from typing import Any

from gateway import faults
from gateway.faults import FaultPoint
from gateway.hl7v2.framing import Frame, Framer, Garbage, Oversize, frame
from gateway.hl7v2.ingest import Delivery, Ingest, Reply

__all__ = ["MllpServer"]

log = logging.getLogger("gateway.hl7v2.mllp")

_READ = 64 * 1024


class MllpServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``port`` is the bound port (useful with 0)."""

    def __init__(
        self,
        ingest: Ingest,
        host: str,
        port: int,
        *,
        max_bytes: int = 16 * 1024 * 1024,
        idle_seconds: float = 300.0,
        frame_seconds: float = 60.0,
        allowed_sources: tuple[str, ...] = (),
        max_connections: int = 256,
        max_in_flight: int = 32,
    ) -> None:
        self.ingest = ingest
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self.frame_seconds = frame_seconds
        self.allowed = [ipaddress.ip_network(s, strict=False) for s in allowed_sources]
        self.max_connections = max_connections
        self.max_in_flight = max_in_flight
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port, limit=self.max_bytes + 2)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("MLLP listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    def _admit(self, peer: Any) -> str | None:
        """Why a new connection is refused, or None."""
        if len(self._tasks) >= self.max_connections:
            return "connection limit reached"
        if self.allowed:
            try:
                address = ipaddress.ip_address(str(peer[0]))
            except (TypeError, ValueError, IndexError):
                return "unknown source address"
            if not any(address in net for net in self.allowed):
                return "source address not allowed"
        return None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        refused = self._admit(peer)
        if refused is not None:
            log.warning("MLLP %s: refused (%s)", peer, refused)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        delivery = Delivery("mllp", None, str(peer[0]) if peer else None)
        framer = Framer(self.max_bytes)
        acks: asyncio.Queue[Awaitable[list[Reply]] | None] = asyncio.Queue(self.max_in_flight)
        acker = asyncio.create_task(self._write_acks(acks, writer, peer))
        try:
            loop = asyncio.get_running_loop()
            frame_deadline: float | None = None
            while not acker.done():
                wait = self.idle_seconds
                if frame_deadline is not None:
                    wait = min(wait, frame_deadline - loop.time())
                    if wait <= 0:
                        log.warning(
                            "MLLP %s: message not complete %.0fs after its first byte; %d bytes discarded, closing",
                            peer,
                            self.frame_seconds,
                            framer.pending,
                        )
                        break
                try:
                    chunk = await asyncio.wait_for(reader.read(_READ), wait)
                except TimeoutError:
                    if frame_deadline is not None and loop.time() >= frame_deadline:
                        continue  # reported above
                    raise
                if not chunk:
                    break
                completed = False
                for event in framer.feed(chunk):
                    pending = self._event(event, delivery)
                    if pending is not None:
                        completed = True
                        await acks.put(pending)
                if not framer.pending:
                    frame_deadline = None
                elif frame_deadline is None or completed:  # the clock starts at a frame's first byte
                    frame_deadline = loop.time() + self.frame_seconds
            if framer.pending:
                log.warning("MLLP %s: connection closed inside a frame; %d bytes discarded", peer, framer.pending)
            if not acker.done():
                await acks.put(None)
                await acker  # the sender may half-close and still read the ACKs of what it sent
        except TimeoutError:
            log.info("MLLP %s: idle for %.0fs, closing", peer, self.idle_seconds)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("MLLP %s: connection reset", peer)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("MLLP %s: connection failed", peer)
        finally:
            if not acker.done():
                acker.cancel()
                with contextlib.suppress(BaseException):
                    await acker
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):  # the peer may already be gone
                await writer.wait_closed()

    def _event(self, event: Frame | Oversize | Garbage, delivery: Delivery) -> Awaitable[list[Reply]] | None:
        """Submit a complete frame (or the AR for an oversize one) now; returns what the ACK writer awaits."""
        if isinstance(event, Garbage):
            log.warning("MLLP %s: %d bytes outside a frame discarded", delivery.source_address, event.size)
            return None
        if isinstance(event, Oversize):
            log.warning("MLLP %s: frame of %d bytes over the limit", delivery.source_address, event.size)
            return self.ingest.submit_oversize(event.head, event.size, self.max_bytes, delivery)
        return self.ingest.submit(event.payload, delivery)

    async def _write_acks(
        self, acks: asyncio.Queue[Awaitable[list[Reply]] | None], writer: asyncio.StreamWriter, peer: Any
    ) -> None:
        """Write each message's ACK(s) in arrival order, each after its commit."""
        try:
            while (pending := await acks.get()) is not None:
                for reply in await pending:
                    data = frame(reply.ack)
                    if faults.arrive(FaultPoint.MID_ACK):
                        await _write_half_and_crash(writer, data)
                    writer.write(data)
                await writer.drain()
        except ConnectionError:
            log.info("MLLP %s: connection lost while writing ACKs", peer)
            writer.transport.abort()  # wakes the reader; the queue is drained so it never blocks on put
            while await acks.get() is not None:
                pass


async def _write_half_and_crash(writer: asyncio.StreamWriter, data: bytes) -> None:
    """The MID_ACK crash point: half the frame reaches the peer, then the process dies."""
    writer.transport.set_write_buffer_limits(high=0)  # drain() returns once the buffer is empty
    writer.write(data[: len(data) // 2])
    await writer.drain()
    faults.crash()
