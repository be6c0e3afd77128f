"""EHR launch contexts: ``createSmartLaunch`` hands the portal a single-use, short-lived ``launch`` value.

The value names a patient the caller may see (checked through the record policy
before this is called); only its SHA-256 is stored. ``/oauth/authorize`` accepts it
once, within ``settings.launch_seconds``, as the app's patient context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from gateway.audit.writer import AuditAction, AuditEntry, append
from gateway.policy.principal import Principal
from gateway.policy.rules import PatientLink
from gateway.settings import Settings
from gateway.smart import store
from gateway.store.database import Database


@dataclass(frozen=True, slots=True)
class Launch:
    value: str
    expires_at: datetime


async def create_launch(db: Database, settings: Settings, principal: Principal, patient_id: str) -> Launch:
    value = store.new_secret()
    now = store.utcnow()
    expires = now + timedelta(seconds=settings.launch_seconds)
    async with db.write() as conn:
        await conn.execute(
            insert(store.launches_t),
            {
                "launchHash": store.digest(value),
                "patient": patient_id,
                "issuedBy": principal.actor_name,
                "createdAt": now,
                "expiresAt": expires,
            },
        )
        owner = (
            await conn.execute(select(store.patients_t.c.user).where(store.patients_t.c.objectId == patient_id))
        ).first()
        await append(
            conn,
            AuditEntry(
                AuditAction.SMART_LAUNCH,
                principal,
                "PatientProfile",
                patient_id,
                PatientLink(patient_id, owner.user if owner else None),
                summary="EHR launch context created for a SMART app",
            ),
        )
    return Launch(value, expires)
