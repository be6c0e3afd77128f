"""Derived state kept in step with the records: care-team roles and record ACLs.

The ACL of a clinical record names the patient's user and the patient's care-team
role; when the patient activates portal access or the care team changes, these
functions bring roles and ACLs up to date inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.auth import roles
from gateway.policy.acl import flatten
from gateway.policy.principal import Role
from gateway.policy.rules import PatientLink, care_team_role, record_acl
from gateway.store.classes import CLASSES, PATIENT_SCOPED
from gateway.store.models import CareTeam, PatientProfile, ProviderProfile, table_of
from gateway.store.objects import set_acl

_patients = table_of(PatientProfile)
_providers = table_of(ProviderProfile)
_care = table_of(CareTeam)


async def patient_link(conn: AsyncConnection, patient_id: str) -> PatientLink | None:
    row = (await conn.execute(select(_patients.c.user).where(_patients.c.objectId == patient_id))).first()
    if row is None:
        return None
    return PatientLink(patient_id=patient_id, patient_user_id=row.user)


async def link_for(conn: AsyncConnection, class_name: str, record: Mapping[str, Any]) -> PatientLink | None:
    if class_name == "PatientProfile":
        return PatientLink(patient_id=str(record["objectId"]), patient_user_id=record.get("user"))
    if class_name in PATIENT_SCOPED and record.get("patient"):
        return await patient_link(conn, str(record["patient"]))
    return None


def acl_columns(class_name: str, record: Mapping[str, Any] | RowMapping, link: PatientLink | None) -> dict[str, Any]:
    acl = record_acl(class_name, dict(record), link)
    rperm, wperm = flatten(acl)
    return {"ACL": acl, "_rperm": rperm, "_wperm": wperm}


async def provider_of_user(conn: AsyncConnection, user_id: str | None) -> str | None:
    if not user_id:
        return None
    row = (await conn.execute(select(_providers.c.objectId).where(_providers.c.user == user_id))).first()
    return None if row is None else str(row.objectId)


async def sync_care_team_role(conn: AsyncConnection, patient_id: str) -> None:
    """The role ``careTeam_<patient>`` holds exactly the users of the providers on the care team."""
    rows = await conn.execute(
        select(_providers.c.user)
        .join(_care, _care.c.relatedId == _providers.c.objectId)
        .where((_care.c.owningId == patient_id) & _providers.c.user.is_not(None) & _providers.c.isActive)
    )
    await roles.set_users(conn, care_team_role(patient_id), {str(r.user) for r in rows})


async def sync_provider_teams(conn: AsyncConnection, provider_id: str) -> None:
    rows = await conn.execute(select(_care.c.owningId).where(_care.c.relatedId == provider_id))
    for row in rows.all():
        await sync_care_team_role(conn, str(row.owningId))


async def resync_patient_acls(conn: AsyncConnection, patient_id: str) -> None:
    """Recompute the ACL of every record of one patient (after activation or relinking)."""
    link = await patient_link(conn, patient_id)
    if link is None:
        return
    profile = CLASSES["PatientProfile"]
    row = (await conn.execute(select(profile.table).where(profile.pk == patient_id))).mappings().first()
    if row is not None:
        cols = acl_columns("PatientProfile", row, link)
        await set_acl(conn, profile, [patient_id], cols["ACL"], cols["_rperm"], cols["_wperm"])
    for name in [*sorted(PATIENT_SCOPED), "AuditLog"]:
        # AuditLog rows: only the ACL columns change, which the hash chain does not cover.
        spec = CLASSES[name]
        rows = (await conn.execute(select(spec.table).where(spec.table.c.patient == patient_id))).mappings()
        for rec in rows.all():
            cols = acl_columns(name, rec, link)
            await set_acl(conn, spec, [rec["objectId"]], cols["ACL"], cols["_rperm"], cols["_wperm"])


async def ensure_built_in_role(conn: AsyncConnection, role: Role, user_id: str) -> None:
    await roles.add_user(conn, role.value, user_id)
