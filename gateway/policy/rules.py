"""The record rules of DESIGN.md as ACLs the server sets; clients never choose them.

A patient sees only their own records; a provider sees the patients whose care team
names them (through the per-patient ``careTeam_<patientId>`` role, the Parse idiom);
admins see everything. Results stay hidden from the patient until published and
unless visibility allows; draft plans stay with the care team.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.policy.acl import ACL, build_acl
from gateway.policy.principal import CARE_TEAM_PREFIX, PUBLIC, Role, role_perm

ADMIN = role_perm(Role.ADMIN)


class LabStatus(StrEnum):
    """LabResult.status uses FHIR ``Observation.status`` codes (value set observation-status)."""

    REGISTERED = "registered"
    PRELIMINARY = "preliminary"
    FINAL = "final"
    AMENDED = "amended"
    CORRECTED = "corrected"
    CANCELLED = "cancelled"
    ENTERED_IN_ERROR = "entered-in-error"
    UNKNOWN = "unknown"


PUBLISHED_STATUSES = frozenset({LabStatus.FINAL, LabStatus.CORRECTED, LabStatus.AMENDED})


class Visibility(StrEnum):
    PATIENT_ONLY = "patient-only"
    PROVIDER_ONLY = "provider-only"
    SHARED = "shared"


class PlanStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    COMPLETED = "completed"
    REVOKED = "revoked"


PLAN_TRANSITIONS: Mapping[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.DRAFT: frozenset({PlanStatus.DRAFT, PlanStatus.ACTIVE, PlanStatus.REVOKED}),
    PlanStatus.ACTIVE: frozenset({PlanStatus.ACTIVE, PlanStatus.COMPLETED, PlanStatus.REVOKED}),
    PlanStatus.COMPLETED: frozenset({PlanStatus.COMPLETED}),
    PlanStatus.REVOKED: frozenset({PlanStatus.REVOKED}),
}


class MessageStatus(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"


class AppointmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELED = "canceled"
    COMPLETED = "completed"
    NO_SHOW = "no-show"


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


ENUM_FIELDS: Mapping[tuple[str, str], type[StrEnum]] = {
    ("LabResult", "status"): LabStatus,
    ("LabResult", "visibility"): Visibility,
    ("TreatmentPlan", "status"): PlanStatus,
    ("Message", "status"): MessageStatus,
    ("Appointment", "status"): AppointmentStatus,
    ("PatientProfile", "gender"): Gender,
}
"""Fields whose values come from a closed code list; anything else is rejected (code 142)."""


def care_team_role(patient_id: str) -> str:
    return f"{CARE_TEAM_PREFIX}{patient_id}"


@dataclass(frozen=True, slots=True)
class PatientLink:
    """What the rules need to know about the patient a record belongs to."""

    patient_id: str
    patient_user_id: str | None


def patient_can_see(class_name: str, row: Mapping[str, Any]) -> bool:
    """Whether the patient themself may read this record in its current state."""
    if class_name == "LabResult":
        return (
            row.get("status") in PUBLISHED_STATUSES
            and row.get("publishedAt") is not None
            and row.get("visibility") != Visibility.PROVIDER_ONLY
        )
    if class_name == "TreatmentPlan":
        return row.get("status") != PlanStatus.DRAFT
    return True


def record_acl(class_name: str, row: Mapping[str, Any], link: PatientLink | None) -> ACL:
    """The ACL a record must carry, recomputed on every write and on portal activation."""
    if class_name == "ProviderProfile":
        return build_acl(read=[PUBLIC], write=[ADMIN])
    if class_name == "_User":
        uid = str(row["objectId"])
        return build_acl(read=[uid, ADMIN], write=[uid, ADMIN])
    if class_name == "_Session":
        return build_acl(read=[str(row["user"])], write=[str(row["user"])])
    if class_name == "_Role":
        name = str(row["name"])
        return build_acl(read=[ADMIN, role_perm(name)], write=[ADMIN])
    if class_name == "AuditLog":
        readers = [ADMIN]
        if link and link.patient_user_id:
            readers.append(link.patient_user_id)
        return build_acl(read=readers, write=[])
    if link is None:
        return build_acl(read=[ADMIN], write=[ADMIN])
    team = role_perm(care_team_role(link.patient_id))
    read = [ADMIN, team]
    write = [ADMIN, team]
    extra_user_ids: list[str] = []
    if class_name == "Message":
        extra_user_ids = [str(v) for v in (row.get("from"), row.get("to")) if v]
    if link.patient_user_id and patient_can_see(class_name, row):
        read.append(link.patient_user_id)
        if class_name in ("PatientProfile", "TreatmentPlan", "Appointment", "Message"):
            write.append(link.patient_user_id)
    for uid in extra_user_ids:
        if uid not in read:
            read.append(uid)
        if uid not in write:
            write.append(uid)
    return build_acl(read=read, write=write)
