"""``_Version`` rows for vread and history, checked under the record rules as they stood then.

A version is visible when the ACL the rules would give that snapshot (``record_acl`` over
its data, with the patient's current portal link) admits the caller: so a patient never
sees a preliminary result's earlier versions even after it was published.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.policy.acl import flatten
from gateway.policy.filters import readable
from gateway.policy.principal import Principal
from gateway.policy.rules import record_acl
from gateway.records import links
from gateway.store.classes import ClassSpec, FieldType
from gateway.store.models import Version, table_of
from gateway.store.objects import Record

_versions = table_of(Version)


def snapshot(spec: ClassSpec, data: dict[str, Any]) -> Record:
    """A stored snapshot back into record shape (its dates were written as ISO strings)."""
    out = dict(data)
    for name, fspec in spec.fields.items():
        value = out.get(name)
        if fspec.type is FieldType.DATE and isinstance(value, str):
            out[name] = datetime.fromisoformat(value)
    return out


async def visible(conn: AsyncConnection, spec: ClassSpec, principal: Principal, record: Record) -> bool:
    if principal.is_master:
        return True
    if spec.name == "PatientProfile":
        # The portal link is the patient's current one, not the snapshot's (activation comes later).
        link = await links.patient_link(conn, str(record["objectId"])) or await links.link_for(conn, spec.name, record)
    else:
        link = await links.link_for(conn, spec.name, record)
    rperm, _ = flatten(record_acl(spec.name, record, link))
    return readable(spec, principal, {**record, "_rperm": rperm})


async def history(
    conn: AsyncConnection, spec: ClassSpec, principal: Principal, object_id: str, version: int | None = None
) -> list[tuple[Record, bool]]:
    """Visible versions, newest first, as (record, deleted)."""
    cond = (_versions.c.className == spec.name) & (_versions.c.objectId == object_id)
    if version is not None:
        cond = cond & (_versions.c.version == version)
    rows = await conn.execute(
        select(_versions.c.data, _versions.c.deleted, _versions.c.createdAt)
        .where(cond)
        .order_by(_versions.c.version.desc())
    )
    out: list[tuple[Record, bool]] = []
    for data, deleted, created in rows:
        record = snapshot(spec, dict(data))
        record.setdefault("updatedAt", created)
        if await visible(conn, spec, principal, record):
            out.append((record, bool(deleted)))
    return out


async def deleted(conn: AsyncConnection, spec: ClassSpec, principal: Principal, object_id: str) -> Record | None:
    """The tombstone of a deleted object, if the caller could have seen it."""
    if not spec.versioned:
        return None
    found = await history(conn, spec, principal, object_id)
    if found and found[0][1]:
        return found[0][0]
    return None
