"""The MLLP listener: asyncio streams, one task per connection, messages in order per connection.

Framing faults (stray bytes, an unterminated frame, a frame over the size limit, a
reset) are logged with sizes only, never content, and never end the listener or
another connection. An oversize frame is answered AR and logged as a dead letter; an
idle connection is closed after ``idle_seconds``. Each ACK is written only after
``Ingest`` returns, i.e. after the transaction holding the message committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Any

from gateway.hl7v2.framing import Frame, Framer, Garbage, Oversize, frame
from gateway.hl7v2.ingest import Delivery, Ingest

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
        allowed_sources: tuple[str, ...] = (),
        max_connections: int = 256,
    ) -> None:
        self.ingest = ingest
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self.allowed = [ipaddress.ip_network(s, strict=False) for s in allowed_sources]
        self.max_connections = max_connections
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
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(_READ), self.idle_seconds)
                if not chunk:
                    break
                for event in framer.feed(chunk):
                    await self._event(event, writer, delivery)
            if framer.pending:
                log.warning("MLLP %s: connection closed inside a frame; %d bytes discarded", peer, framer.pending)
        except TimeoutError:
            log.info("MLLP %s: idle for %.0fs, closing", peer, self.idle_seconds)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("MLLP %s: connection reset", peer)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("MLLP %s: connection failed", peer)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):  # the peer may already be gone
                await writer.wait_closed()

    async def _event(self, event: Frame | Oversize | Garbage, writer: asyncio.StreamWriter, delivery: Delivery) -> None:
        if isinstance(event, Garbage):
            log.warning("MLLP %s: %d bytes outside a frame discarded", delivery.source_address, event.size)
            return
        if isinstance(event, Oversize):
            log.warning("MLLP %s: frame of %d bytes over the limit", delivery.source_address, event.size)
            reply = await self.ingest.reject_oversize(event.head, event.size, self.max_bytes, delivery)
            writer.write(frame(reply.ack))
            await writer.drain()
            return
        for reply in await self.ingest.handle_payload(event.payload, delivery):
            writer.write(frame(reply.ack))
            await writer.drain()
