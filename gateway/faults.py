"""Crash points for the ACK-after-commit test (catalog D01): die at a chosen step of HL7 ingest.

The promise under test is that a sender holding an AA has its message stored exactly
once, whatever instant the process dies at. Killing the process from outside only ever
lands where it happens to be; these points let the test die *exactly* after parsing,
inside the write transaction, between COMMIT and the ACK, and half-way through writing
an ACK frame, which are the instants where a wrong design loses or doubles a message.

``GATEWAY_FAULT=POINT:N`` (read once, at import) makes the N-th arrival at ``POINT``
end the process with ``os._exit`` (no clean-up, no flush: what SIGKILL leaves). Unset, a
crash point costs one comparison against None. Only the crash test sets it; the variable
is not a setting and ``serve`` does not document it to operators.
"""

from __future__ import annotations

import os
from enum import StrEnum

__all__ = ["CRASH_STATUS", "FaultPoint", "arm", "arrive", "crash", "reached"]

CRASH_STATUS = 86
"""Exit status of a fault crash, so the test can tell it from any other death."""


class FaultPoint(StrEnum):
    PARSED = "parsed"
    """A message was decoded, parsed and mapped; nothing of it is written yet."""
    IN_TRANSACTION = "in-transaction"
    """A group's rows are written and COMMIT has not been sent."""
    COMMITTED = "committed"
    """COMMIT returned; no sender has been told yet."""
    MID_ACK = "mid-ack"
    """Half of an ACK frame is on the socket, the rest is not."""


class _Armed:
    __slots__ = ("point", "remaining")

    def __init__(self, point: FaultPoint, count: int) -> None:
        self.point = point
        self.remaining = count


def _parse(spec: str | None) -> _Armed | None:
    if not spec:
        return None
    name, _, count = spec.partition(":")
    return _Armed(FaultPoint(name), int(count or "1"))


_armed = _parse(os.environ.get("GATEWAY_FAULT"))


def arm(spec: str | None) -> None:
    """Re-read the crash point (a process forked after import, as the crash test's fork server does)."""
    global _armed
    _armed = _parse(spec)


def arrive(point: FaultPoint) -> bool:
    """Count an arrival at ``point``; True when this is the arrival that must crash (for a caller
    that stages something first, such as half an ACK, then calls ``crash``)."""
    if _armed is None or _armed.point is not point:
        return False
    _armed.remaining -= 1
    return _armed.remaining == 0


def crash() -> None:
    os._exit(CRASH_STATUS)


def reached(point: FaultPoint) -> None:
    """Count an arrival at ``point``; the configured arrival ends the process on the spot."""
    if arrive(point):
        crash()
