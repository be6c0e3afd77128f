"""Dead letters (AE/AR rows of the message log) for admins: list, show, re-process.

The CLI (``portal-gateway hl7 dead-letters`` / ``hl7 reprocess``) and the admin HTTP
routes (``gateway.hl7v2.admin``) both come here (the CLI through the same
``messagelog.dead_letters`` and ``Ingest.reprocess``), so both doors answer the same.
Showing a dead letter returns the raw message (health data), so it writes an AuditLog
``read`` entry; a re-process writes an ``execute`` entry naming the new message row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.audit.writer import AuditAction, AuditEntry, append
from gateway.hl7v2 import messagelog
from gateway.hl7v2.ingest import Ingest
from gateway.policy.principal import Principal
from mappings.hl7v2 import AckCode

__all__ = ["MAX_LIMIT", "list_dead_letters", "reprocess", "show_dead_letter"]

MAX_LIMIT = 1000
"""Largest page of dead letters (larger limits are clamped, as Parse ``limit`` is)."""

_SUMMARY = (
    "id",
    "receivedAt",
    "outcome",
    "transport",
    "feed",
    "sourceAddress",
    "sendingApplication",
    "sendingFacility",
    "controlId",
    "messageType",
    "size",
)


def _json(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _SUMMARY:
        value = row.get(key)
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    out["reasons"] = list(row.get("reason") or [])
    out["effects"] = row.get("effects") or {}
    return out


async def list_dead_letters(ingest: Ingest, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first, without message content: who sent what, when, and why it was not applied."""
    async with ingest.db.read() as conn:
        rows = await messagelog.dead_letters(conn, max(1, min(limit, MAX_LIMIT)))
    return [_json(r) for r in rows]


async def show_dead_letter(ingest: Ingest, message_id: str, principal: Principal) -> dict[str, Any] | None:
    """One dead letter with its raw message (decoded for display) and the ACK that was sent; None if
    there is no such AE/AR row (an applied message is not a dead letter)."""
    async with ingest.db.write() as conn:
        row = await messagelog.load(conn, message_id)
        if row is None or row["outcome"] == AckCode.AA.value:
            return None
        await append(
            conn,
            AuditEntry(AuditAction.READ, principal, "Hl7Message", message_id, None, summary="dead letter shown"),
        )
    shown = _json(row)
    raw = bytes(row["raw"])
    shown["message"] = raw.decode("utf-8", "replace").replace("\r", "\n")
    shown["ack"] = str(row["ack"]).replace("\r", "\n")
    return shown


async def reprocess(ingest: Ingest, message_id: str, principal: Principal) -> dict[str, Any] | None:
    """Run a dead letter through ingest again (after a fix); None if there is no such dead letter."""
    reply = await ingest.reprocess(message_id)
    if reply is None:
        return None
    async with ingest.db.write() as conn:
        await append(
            conn,
            AuditEntry(
                AuditAction.EXECUTE,
                principal,
                "Hl7Message",
                message_id,
                None,
                summary=f"dead letter re-processed: {reply.code.value}",
                metadata={"reprocessedAs": reply.message_id, "outcome": reply.code.value},
            ),
        )
    return {
        "id": message_id,
        "outcome": reply.code.value,
        "messageId": reply.message_id,
        "duplicate": reply.duplicate,
        "ack": reply.ack.decode("utf-8", "replace").replace("\r", "\n"),
    }
