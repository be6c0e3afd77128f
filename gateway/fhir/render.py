"""Native records -> FHIR resource dicts through the pure mappings (read path: plain dicts only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.fhir.context import FhirContext
from gateway.fhir.registry import ResourceDef
from gateway.store.classes import CLASSES
from gateway.store.models import PatientProfile, ProviderProfile, table_of
from gateway.store.objects import Record, join_fields
from gateway.store.rowmemo import MemoRow

_patients = table_of(PatientProfile)
_providers = table_of(ProviderProfile)
USER_FIELDS = {"Communication": ("from", "to"), "AuditEvent": ("actor",)}
"""Resources whose native rows point at ``_User``: those resolve to Patient/Practitioner references."""


async def user_refs(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[str, str]:
    """``_User`` id -> ``Patient/<id>`` or ``Practitioner/<id>`` (one query per profile class)."""
    ids = sorted({u for u in user_ids if u})
    if not ids:
        return {}
    out: dict[str, str] = {}
    for table, kind in ((_providers, "Practitioner"), (_patients, "Patient")):
        rows = await conn.execute(select(table.c.user, table.c.objectId).where(table.c.user.in_(ids)))
        out.update({str(user): f"{kind}/{oid}" for user, oid in rows})
    return out


async def to_resources(
    conn: AsyncConnection, ctx: FhirContext, rdef: ResourceDef, records: Sequence[Record]
) -> list[dict[str, Any]]:
    """The resources (each a fresh top-level dict) for ``records``.

    A record as read (``MemoRow``) maps once per unchanged row and options: its resource is
    remembered in the row's entry (``gateway.store.rowmemo``). Not for resources whose
    mapping also reads other rows (``_User`` references, join tables)."""
    fields = USER_FIELDS.get(rdef.type, ())
    to_fhir = rdef.mapping.to_fhir
    options = ctx.options
    if fields:
        refs = await user_refs(conn, (str(r.get(f)) for r in records for f in fields if r.get(f)))
        return [to_fhir(r, options, user_refs=refs) for r in records]
    if join_fields(CLASSES[rdef.class_name]):
        return [to_fhir(r, options) for r in records]
    key = rdef.type  # with the options it was mapped with, compared by identity (hashing them per row costs)
    out = []
    for r in records:
        if type(r) is MemoRow:
            renders = r.memo.renders
            done = renders.get(key)
            if done is None or done[0] is not options:
                done = renders[key] = (options, to_fhir(r.memo.public(), options))
            out.append(done[1].copy())
        else:
            out.append(to_fhir(r, options))
    return out


def kept_json(rdef: ResourceDef, record: Record, options: object) -> bytes | None:
    """The JSON of the resource ``to_resources`` keeps for ``record``, encoded once; None when it
    keeps none. Keyed by the kept resource itself, so the bytes are always that resource's:
    a read answers an unchanged object without encoding it again (about 5 µs of a FHIR read)."""
    if type(record) is not MemoRow:
        return None
    renders = record.memo.renders
    done = renders.get(rdef.type)
    if done is None or done[0] is not options:
        return None
    key = (rdef.type, "json")
    found = renders.get(key)
    if found is None or found[0] is not done[1]:
        found = renders[key] = (done[1], msgspec.json.encode(done[1]))
    return found[1]


def etag(version: object) -> str:
    return f'W/"{version or 1}"'


def version_headers(record: Record) -> dict[str, str]:
    """ETag and Last-Modified; for a remembered row (``gateway.store.rowmemo``) formatted once, under
    a key holding the very values they are made from (the HTTP date alone cost several µs a read)."""
    version, updated = record.get("version"), record.get("updatedAt")
    if type(record) is not MemoRow:
        return _version_headers(version, updated)
    renders = record.memo.renders
    key = ("version_headers", version, updated)
    found = renders.get(key)
    if found is None:
        found = renders[key] = _version_headers(version, updated)
    return dict(found)


def _version_headers(version: object, updated: datetime | None) -> dict[str, str]:
    headers = {"ETag": etag(version)}
    if updated is not None:
        headers["Last-Modified"] = format_datetime(updated, usegmt=True)
    return headers
