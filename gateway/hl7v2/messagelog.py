"""The HL7 v2 message log (``_Hl7Message``): every received message, its outcome and its ACK.

Exactly-once effect rests on one unique key, (sending facility, MSH-10) in
``controlKey``: a message that owns its control id (AA, or AE for a message that
was understood but could not be applied) takes the key in the same transaction as
its effects. A repeat finds the row: same content digest -> the stored ACK again,
different content -> a dead letter without the key. Dead letters are the AE/AR rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.models import Hl7Message, table_of
from mappings.hl7v2 import AckCode, Hl7Error, MessageHeader

__all__ = ["LogEntry", "LoggedAck", "content_digest", "find_control", "record"]

_log = table_of(Hl7Message)


def content_digest(text: str) -> str:
    """SHA-256 of the normalized message text, so CR/LF/CRLF and a BOM do not make a repeat 'different'."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class LoggedAck:
    """What a repeat needs from the original row."""

    id: str
    outcome: AckCode
    ack: str
    digest: str


@dataclass(slots=True)
class LogEntry:
    """One row of the message log."""

    id: str
    received_at: datetime
    transport: str
    feed: str | None
    source_address: str | None
    header: MessageHeader | None
    raw: bytes
    digest: str
    outcome: AckCode
    ack: str
    reasons: list[Hl7Error]
    owns_control_id: bool
    effects: dict[str, Any] | None = None
    size: int = 0
    """Bytes received, when ``raw`` keeps only the head of an oversize message."""


async def find_control(conn: AsyncConnection, facility: str, control_id: str) -> LoggedAck | None:
    """The row that owns (facility, MSH-10), if any."""
    stmt = select(_log.c.id, _log.c.outcome, _log.c.ack, _log.c.digest).where(
        (_log.c.sendingFacility == facility) & (_log.c.controlKey == control_id)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return LoggedAck(str(row.id), AckCode(row.outcome), str(row.ack), str(row.digest))


async def record(conn: AsyncConnection, entry: LogEntry) -> None:
    """Insert the row; raises ``IntegrityError`` when another transaction took the control id first."""
    h = entry.header
    await conn.execute(
        insert(_log),
        {
            "id": entry.id,
            "receivedAt": entry.received_at,
            "transport": entry.transport,
            "feed": entry.feed,
            "sourceAddress": entry.source_address,
            "sendingApplication": h.sending_application[:255] if h else None,
            "sendingFacility": h.sending_facility[:255] if h else None,
            "controlId": h.control_id[:255] if h else None,
            "controlKey": h.control_id[:255] if h and entry.owns_control_id else None,
            "messageType": f"{h.message_type}^{h.trigger_event}"[:32] if h else None,
            "digest": entry.digest,
            "size": entry.size or len(entry.raw),
            "raw": entry.raw,
            "outcome": entry.outcome.value,
            "ack": entry.ack,
            "reason": [e.as_dict() for e in entry.reasons] or None,
            "effects": entry.effects,
        },
    )
