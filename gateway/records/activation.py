"""Portal activation: staff issue a single-use, expiring code; the patient redeems it with their birth date.

Only the code's SHA-256 is stored. A wrong birth date counts against the code and
five failures burn it, so a code cannot be used to guess a birth date. Every
failure answers with the same text, whichever check failed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from gateway.audit import AuditAction, AuditEntry, append
from gateway.errors import NotFound, ScriptFailed
from gateway.policy.acl import allows
from gateway.policy.principal import Principal
from gateway.policy.rules import PatientLink
from gateway.records import links
from gateway.records.service import Records
from gateway.store.classes import CLASSES
from gateway.store.models import PatientProfile, PortalActivation, table_of
from gateway.store.objects import get_record, now, update_record

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MAX_FAILURES = 5
FAILED = "Invalid or expired activation code, or the date of birth does not match."

_codes = table_of(PortalActivation)
_patients = table_of(PatientProfile)


def _digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").upper().encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    expires_at: datetime


async def issue(records: Records, principal: Principal, patient_id: str) -> IssuedCode:
    """Staff only: admins, or a provider on the patient's care team."""
    spec = CLASSES["PatientProfile"]
    async with records.db.write() as conn:
        patient = await get_record(conn, spec, patient_id, records.filter_for(spec, principal), keep_internal=True)
        staff = principal.is_admin or (
            principal.is_provider and allows(patient and patient.get("_wperm"), principal.perms)
        )
        if patient is None or not staff:
            raise NotFound()
        if patient.get("user"):
            raise ScriptFailed("This patient has already activated portal access.")
        code = _new_code()
        ts = now()
        expires = ts + timedelta(minutes=records.settings.activation_code_minutes)
        await conn.execute(
            insert(_codes),
            {
                "codeHash": _digest(code),
                "patient": patient_id,
                "issuedBy": principal.actor_name,
                "createdAt": ts,
                "expiresAt": expires,
                "failedAttempts": 0,
            },
        )
        await append(
            conn,
            AuditEntry(
                AuditAction.EXECUTE,
                principal,
                "PatientProfile",
                patient_id,
                PatientLink(patient_id, None),
                summary="portal activation code issued",
            ),
        )
    return IssuedCode(code, expires)


async def activate(records: Records, principal: Principal, code: object, date_of_birth: object) -> str:
    """Link the signed-in user to the patient the code was issued for; returns the patient id."""
    if not principal.is_user or principal.user_id is None:
        raise ScriptFailed("Sign in before activating portal access.")
    if not isinstance(code, str) or not isinstance(date_of_birth, str) or not code or len(code) > 64:
        raise ScriptFailed(FAILED)
    failure: str | None = None
    async with records.db.write() as conn:
        row = (await conn.execute(select(_codes).where(_codes.c.codeHash == _digest(code)))).mappings().first()
        ts = now()
        if row is None or row["usedAt"] is not None or row["expiresAt"] <= ts or row["failedAttempts"] >= MAX_FAILURES:
            failure = FAILED
        else:
            patient_id = str(row["patient"])
            spec = CLASSES["PatientProfile"]
            patient = await get_record(conn, spec, patient_id)
            taken = (
                await conn.execute(select(_patients.c.objectId).where(_patients.c.user == principal.user_id))
            ).first()
            if patient is None or patient.get("dateOfBirth") != date_of_birth or patient.get("user"):
                await conn.execute(
                    update(_codes).where(_codes.c.id == row["id"]).values(failedAttempts=row["failedAttempts"] + 1)
                )
                failure = FAILED
            elif taken is not None:
                failure = "This account is already linked to a patient record."
            else:
                await conn.execute(update(_codes).where(_codes.c.id == row["id"]).values(usedAt=ts))
                link = PatientLink(patient_id, principal.user_id)
                changes = {
                    "user": principal.user_id,
                    "updatedAt": ts,
                    **links.acl_columns("PatientProfile", {**patient, "user": principal.user_id}, link),
                }
                record = await update_record(conn, spec, patient, changes, actor=principal.actor_name)
                await records._after_write(conn, "PatientProfile", patient, record)
                await append(conn, AuditEntry(AuditAction.ACTIVATE, principal, "PatientProfile", patient_id, link))
        if failure is not None:
            await append(
                conn,
                AuditEntry(
                    AuditAction.ACTIVATE,
                    principal,
                    "PatientProfile",
                    None,
                    outcome="failure",
                    summary="portal activation refused",
                ),
            )
    if failure is not None:
        raise ScriptFailed(failure)
    return patient_id
