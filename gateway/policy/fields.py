"""Property-level authorization: which fields a caller may set (catalog A10, mass assignment).

Writability depends on the caller's relation to the record, not just their role: a
patient may edit their own contact details but never their MRN, care team or user
link; only the patient acknowledges a plan; only staff touch clinical values.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from gateway.errors import Forbidden, Invalid, ParseCode
from gateway.policy.principal import Principal
from gateway.policy.rules import PatientLink, care_team_role

SERVER_MANAGED = frozenset({"objectId", "createdAt", "updatedAt", "version"})
"""Never client-settable; sending them is Parse's 105 "invalid field name"."""


class Relation(StrEnum):
    """How the caller relates to the record being written."""

    MASTER = "master"
    ADMIN = "admin"
    CARE_TEAM = "care-team"
    PATIENT = "patient"
    """The patient the record belongs to (or the user themself, for ``_User``)."""
    PARTICIPANT = "participant"
    """Sender or recipient of a Message who is neither patient nor care team."""
    OTHER = "other"


_ALL = "*"

_WRITABLE: Mapping[str, Mapping[Relation, frozenset[str]]] = {
    "_User": {
        Relation.PATIENT: frozenset({"username", "email", "password"}),
        Relation.ADMIN: frozenset({"username", "email", "password", "emailVerified"}),
    },
    "_Session": {},
    "_Role": {Relation.ADMIN: frozenset({"name", "users", "roles"})},
    "PatientProfile": {
        Relation.PATIENT: frozenset({"displayName", "contact"}),
        Relation.CARE_TEAM: frozenset(
            {
                "displayName",
                "givenName",
                "familyName",
                "dateOfBirth",
                "gender",
                "primaryClinic",
                "contact",
                "careTeam",
                "isActive",
            }
        ),
        Relation.ADMIN: frozenset({_ALL}),
    },
    "ProviderProfile": {Relation.ADMIN: frozenset({_ALL})},
    "LabResult": {
        Relation.CARE_TEAM: frozenset(
            {
                "patient",
                "orderedBy",
                "orderId",
                "testCode",
                "codeSystem",
                "testName",
                "resultValue",
                "valueType",
                "units",
                "referenceRange",
                "interpretation",
                "status",
                "effectiveAt",
                "publishedAt",
                "visibility",
                "notes",
                "attachments",
                "resultData",
                "sourceMessageId",
            }
        ),
        Relation.ADMIN: frozenset({_ALL}),
    },
    "TreatmentPlan": {
        Relation.PATIENT: frozenset({"acknowledgedAt"}),
        Relation.CARE_TEAM: frozenset({"patient", "provider", "summary", "details", "status", "startDate", "endDate"}),
        Relation.ADMIN: frozenset({_ALL}),
    },
    "Message": {
        Relation.PATIENT: frozenset(
            {"patient", "to", "body", "attachments", "conversationId", "isRead", "status", "readAt"}
        ),
        Relation.PARTICIPANT: frozenset({"isRead", "status", "readAt"}),
        Relation.CARE_TEAM: frozenset(
            {"patient", "to", "body", "attachments", "conversationId", "isRead", "status", "readAt"}
        ),
        Relation.ADMIN: frozenset({_ALL}),
    },
    "Appointment": {
        Relation.PATIENT: frozenset({"status"}),
        Relation.CARE_TEAM: frozenset({"patient", "provider", "startAt", "endAt", "location", "status", "reason"}),
        Relation.ADMIN: frozenset({_ALL}),
    },
    "AuditLog": {},
}

_CREATE_ONLY: Mapping[str, frozenset[str]] = {
    "_Role": frozenset({"name"}),
    "LabResult": frozenset({"patient"}),
    "TreatmentPlan": frozenset({"patient"}),
    "Message": frozenset({"patient", "to", "body", "attachments", "conversationId"}),
    "Appointment": frozenset({"patient"}),
}
"""Fields fixed once the record exists (moving a result to another patient is not an edit)."""


_CREATE_EXTRA: Mapping[tuple[str, Relation], frozenset[str]] = {
    ("PatientProfile", Relation.CARE_TEAM): frozenset({"medicalRecordNumber", "mrnAuthority"}),
}
"""Fields a relation may set when creating a record but never change afterwards."""


def check_writable(class_name: str, keys: set[str], relation: Relation, *, creating: bool) -> None:
    bad_server = keys & SERVER_MANAGED
    if bad_server:
        name = sorted(bad_server)[0]
        raise Invalid(f"{name} is an invalid field name.", parse_code=ParseCode.INVALID_KEY_NAME)
    if relation is Relation.MASTER:
        allowed: frozenset[str] = frozenset({_ALL})
    else:
        table = _WRITABLE.get(class_name, {})
        allowed = table.get(relation, frozenset())
        if relation is Relation.ADMIN and not allowed:
            allowed = table.get(Relation.CARE_TEAM, frozenset())
    if creating:
        allowed = allowed | _CREATE_EXTRA.get((class_name, relation), frozenset())
    refused = set() if _ALL in allowed else keys - allowed
    if not creating:
        refused |= keys & _CREATE_ONLY.get(class_name, frozenset())
    if refused:
        name = sorted(refused)[0]
        raise Forbidden(f"Permission denied to set field {name} on class {class_name}.")


HIDDEN_FOR_OTHERS: Mapping[str, frozenset[str]] = {"_User": frozenset({"email", "emailVerified"})}
"""Fields shown only to the record's own user and admins (Parse protectedFields); never queryable by others."""


def hidden_fields(class_name: str, principal: Principal, record: Mapping[str, Any]) -> frozenset[str]:
    hidden = HIDDEN_FOR_OTHERS.get(class_name, frozenset())
    if not hidden or principal.is_admin or record.get("objectId") == principal.user_id:
        return frozenset()
    return hidden


def relation_of(principal: Principal, class_name: str, record: Mapping[str, Any], link: PatientLink | None) -> Relation:
    """How the caller relates to a record (or, on create, to the patient it will belong to)."""
    if principal.compartment is not None and link is not None and link.patient_id != principal.compartment:
        return Relation.OTHER  # a patient/ grant never writes outside its compartment
    if principal.is_master:
        return Relation.MASTER
    if principal.is_admin:
        return Relation.ADMIN
    if class_name == "_User":
        return Relation.PATIENT if record.get("objectId") == principal.user_id else Relation.OTHER
    if class_name == "PatientProfile" and record.get("objectId") is None and principal.is_provider:
        return Relation.CARE_TEAM
    if link is not None and care_team_role(link.patient_id) in principal.roles:
        return Relation.CARE_TEAM
    if link is not None and link.patient_user_id and link.patient_user_id == principal.user_id:
        return Relation.PATIENT
    if class_name == "Message" and principal.user_id in (record.get("from"), record.get("to")):
        return Relation.PARTICIPANT
    return Relation.OTHER
