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

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.hl7v2 import prefetch, staged
from gateway.store.anyof import by_dialect
from gateway.store.models import Hl7Message, table_of
from mappings.hl7v2 import AckCode, Hl7Error, MessageHeader

__all__ = ["LogEntry", "LoggedAck", "content_digest", "dead_letters", "find_control", "load", "record", "release"]

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


_FIND_CONTROL = select(_log.c.id, _log.c.outcome, _log.c.ack, _log.c.digest).where(
    (_log.c.sendingFacility == bindparam("facility")) & (_log.c.controlKey == bindparam("control"))
)
"""Built once: constructing the statement per message costs more than running it (hot path)."""


async def find_control(conn: AsyncConnection, facility: str, control_id: str) -> LoggedAck | None:
    """The row that owns (facility, MSH-10), if any (one an earlier message of the group staged too)."""
    key = _control_key(facility, control_id)
    group = staged.current()
    if group is not None and group.holds([key]):
        await group.flush(conn)
    else:
        hit, known = prefetch.lookup(key)
        if hit:
            return known  # type: ignore[no-any-return]
    row = (await conn.execute(_FIND_CONTROL, {"facility": facility, "control": control_id})).first()
    if row is None:
        return None
    return LoggedAck(str(row.id), AckCode(row.outcome), str(row.ack), str(row.digest))


_INSERT = insert(_log)


_CONTROLS = by_dialect(
    lambda one_of: select(
        _log.c.id, _log.c.outcome, _log.c.ack, _log.c.digest, _log.c.sendingFacility, _log.c.controlKey
    ).where(one_of(_log.c.sendingFacility, "facilities") & one_of(_log.c.controlKey, "keys"))
)
"""A group's control ids, read ahead (``read_ahead``). Both columns constrained: the unique
(sendingFacility, controlKey) index answers it."""


def _control_key(facility: str, control_id: str) -> tuple[str, str, str]:
    return ("Hl7Message", facility, control_id)


async def read_ahead(conn: AsyncConnection, reads: prefetch.GroupReads, controls: list[tuple[str, str]]) -> None:
    """``find_control`` for each (facility, MSH-10) of a group in one statement (``hl7v2.prefetch``);
    a pair that finds nothing is recorded as such."""
    if not controls:
        return
    wanted = set(controls)
    found: dict[tuple[str, str], LoggedAck | None] = dict.fromkeys(wanted)
    facilities, keys = sorted({f for f, _ in wanted}), sorted({c for _, c in wanted})
    stmt = _CONTROLS[conn.dialect.name]
    for row in await conn.execute(stmt, {"facilities": facilities, "keys": keys}):
        pair = (str(row.sendingFacility), str(row.controlKey))
        if pair in wanted:
            found[pair] = LoggedAck(str(row.id), AckCode(row.outcome), str(row.ack), str(row.digest))
    for (facility, control), known in found.items():
        reads.put(_control_key(facility, control), known)


async def record(conn: AsyncConnection, entry: LogEntry) -> None:
    """Insert the row (inside a group commit: stage it, ``hl7v2.staged``). ``IntegrityError`` when
    another transaction took the control id first: here, or when the group's staged rows go in."""
    h = entry.header
    row = _row(entry, h)
    keys = [] if row["controlKey"] is None else [_control_key(row["sendingFacility"], row["controlKey"])]
    prefetch.changed(*keys)
    group = staged.current()
    if group is None:
        await conn.execute(_INSERT, row)
    else:
        group.add(_INSERT, [row], keys)


def _row(entry: LogEntry, h: MessageHeader | None) -> dict[str, Any]:
    return {
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
    }


async def load(conn: AsyncConnection, message_id: str) -> dict[str, Any] | None:
    """One log row as a dict (raw bytes included)."""
    row = (await conn.execute(select(_log).where(_log.c.id == message_id))).mappings().first()
    return None if row is None else dict(row)


async def release(conn: AsyncConnection, message_id: str, note: dict[str, Any]) -> None:
    """Give up a dead letter's control id so a re-run can take it; the row stays, with ``note`` in its effects."""
    row = await load(conn, message_id)
    effects = {**((row or {}).get("effects") or {}), **note}
    await conn.execute(update(_log).where(_log.c.id == message_id).values(controlKey=None, effects=effects))


async def dead_letters(conn: AsyncConnection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest AE/AR rows, without their raw bytes."""
    cols = [c for c in _log.c if c.name != "raw"]
    stmt = select(*cols).where(_log.c.outcome != AckCode.AA.value).order_by(_log.c.receivedAt.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(stmt)).mappings()]
