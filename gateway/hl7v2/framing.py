"""MLLP framing (HL7 v2.5.1 Appendix C, MLLP release 2): ``0x0B payload 0x1C 0x0D``, as a pure byte state machine.

Feed it whatever the socket returned; it yields complete frames, frames that grew
past the size limit (counted, never buffered beyond the limit) and the number of
stray bytes it discarded. A 0x0B inside an open frame means the previous frame was
never terminated: that partial frame is discarded (never merged, never acknowledged).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["END", "START", "Frame", "Framer", "Garbage", "Oversize", "frame"]

START = b"\x0b"
END = b"\x1c\x0d"
HEAD_BYTES = 64 * 1024
"""How much of an oversize frame is kept for the dead-letter log and the AR's MSH."""


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Oversize:
    head: bytes
    size: int


@dataclass(frozen=True, slots=True)
class Garbage:
    size: int


Event = Frame | Oversize | Garbage


def frame(payload: bytes) -> bytes:
    """Wrap one message (or ACK) for the wire."""
    return START + payload + END


class Framer:
    """Incremental MLLP reader for one connection."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._open = False
        self._oversize = 0  # > 0 while discarding an oversize frame: bytes seen so far
        self._head = b""
        self._scanned = 0

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame (EOF now would lose them)."""
        return len(self._buf) + self._oversize

    @property
    def buffered(self) -> int:
        """Bytes held in memory (bounded by the limit plus one read, even for an oversize frame)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        self._buf += data
        while self._buf:
            if not self._open:
                start = self._buf.find(START)
                if start < 0:
                    events.append(Garbage(len(self._buf)))
                    self._buf.clear()
                    break
                if start:
                    events.append(Garbage(start))
                del self._buf[: start + 1]
                self._open, self._scanned = True, 0
                continue
            if not self._step(events):
                break
        return events

    def _step(self, events: list[Event]) -> bool:
        """Advance an open frame; False when more bytes are needed."""
        from_ = max(0, self._scanned - 1)
        end = self._buf.find(END, from_)
        restart = self._buf.find(START, from_)
        if restart >= 0 and (end < 0 or restart < end):
            events.append(Garbage(restart + 1 + self._oversize))
            del self._buf[:restart]
            self._open, self._oversize = False, 0
            return True
        if end >= 0:
            size = self._oversize + end
            if size > self.max_bytes:
                events.append(Oversize(self._head or bytes(self._buf[: min(end, HEAD_BYTES)]), size))
                self._oversize, self._head = 0, b""
            else:
                events.append(Frame(bytes(self._buf[:end])))
            del self._buf[: end + len(END)]
            self._open = False
            return True
        self._scanned = len(self._buf)
        if len(self._buf) + self._oversize > self.max_bytes:
            keep = 1  # a 0x1C at the very end may be followed by 0x0D in the next read
            if not self._oversize:
                self._head = bytes(self._buf[:HEAD_BYTES])
            self._oversize += len(self._buf) - keep
            del self._buf[:-keep]
            self._scanned = len(self._buf)
        return False
