"""``portal-gateway audit export --since DATE``: AuditLog entries as NDJSON FHIR AuditEvents.

Each line is the AuditEvent the FHIR door serves for that entry (the same pure mapping,
``mappings.native_fhir.auditevent``, with ``agent.who`` resolved to Patient/Practitioner
references), oldest first by chain position, read in keyset pages so memory stays flat.
The export itself is recorded in the trail (an ``execute`` entry by ``cli:audit-export``):
it hands the access history of every patient to whoever runs it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TextIO

import msgspec
from sqlalchemy import select

from gateway.audit.writer import AuditAction, AuditEntry, append
from gateway.fhir.render import user_refs
from gateway.policy.principal import system
from gateway.settings import Settings
from gateway.store.database import Database
from gateway.store.models import AuditLog, table_of
from gateway.store.objects import record_from_row
from mappings.native_fhir import MappingOptions
from mappings.native_fhir.auditevent import to_fhir

PAGE = 1000
_log = table_of(AuditLog)


class ExportError(ValueError):
    """A ``--since`` value that is neither a date nor an ISO 8601 instant."""


def parse_since(value: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 instant (UTC when it has no offset)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ExportError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 instant") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def export_ndjson(settings: Settings, since: datetime, out: TextIO) -> int:
    """Write one AuditEvent per line for entries recorded at or after ``since``; returns how many."""
    options = MappingOptions(base_url=settings.base_url.rstrip("/") + "/fhir")
    db = Database(settings.database_url)
    count, last_seq = 0, 0
    try:
        while True:
            async with db.read() as conn:
                rows = (
                    (
                        await conn.execute(
                            select(_log)
                            .where(_log.c.seq > last_seq, _log.c.createdAt >= since)
                            .order_by(_log.c.seq)
                            .limit(PAGE)
                        )
                    )
                    .mappings()
                    .all()
                )
                if not rows:
                    break
                records = [record_from_row(r) for r in rows]
                refs = await user_refs(conn, (str(r["actor"]) for r in records if r.get("actor")))
            for record in records:
                out.write(msgspec.json.encode(to_fhir(record, options, user_refs=refs)).decode())
                out.write("\n")
            count += len(records)
            last_seq = int(rows[-1]["seq"])
        out.flush()
        async with db.write() as conn:
            summary = f"audit export since {since.isoformat()}: {count} AuditEvent(s)"
            await append(conn, AuditEntry(AuditAction.EXECUTE, system("cli:audit-export"), "AuditLog", summary=summary))
    finally:
        await db.dispose()
    return count
