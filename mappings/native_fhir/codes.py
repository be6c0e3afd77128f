"""Every code, system URI and status map the native <-> FHIR mappings use, as data.

Tables map native codes (left) to FHIR codes (right); the reverse direction is derived
here too, so a code missing from a table is an explicit mapping issue, never echoed.
Our own systems live under ``MappingOptions.system_base`` (see :func:`local_uri`).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Final
from urllib.parse import quote, unquote

# --- external systems -------------------------------------------------------------
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
UCUM: Final = "http://unitsofmeasure.org"
NPI: Final = "http://hl7.org/fhir/sid/us-npi"
V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
"""HL7 v2 table 0203 identifier type (``Patient.identifier.type``: ``MR``)."""
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
V3_INTERPRETATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
V3_PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
AUDIT_EVENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION: Final = "http://hl7.org/fhir/restful-interaction"
DICOM_DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
SECURITY_SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP_ENTITY_TYPE: Final = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"

# --- our own systems (relative to MappingOptions.system_base) ------------------------
SID_CONVERSATION: Final = "sid/conversation"
"""``Communication.identifier.system`` suffix: the message thread (``Message.conversationId``)."""
SID_ORDER: Final = "sid/order"
"""``Observation.basedOn.identifier.system`` suffix: the lab order number (``LabResult.orderId``)."""
SID_USER: Final = "sid/user"
"""``AuditEvent.agent.who.identifier.system`` suffix for a ``_User`` with no FHIR resource."""
SID_CLIENT: Final = "sid/client"
"""``AuditEvent.agent.who.identifier.system`` suffix for an OAuth client id."""
SID_NATIVE: Final = "sid/native/"
"""Prefix + native class name: ``AuditEvent.entity.what.identifier`` for non-FHIR classes."""
CS_VISIBILITY: Final = "CodeSystem/visibility"
"""``meta.security`` system carrying ``LabResult.visibility``."""
CS_AUDIT_ACTION: Final = "CodeSystem/audit-action"
"""``AuditEvent.type`` for native audit actions with no standard interaction."""
CS_V2_PREFIX: Final = "CodeSystem/v2-"
"""Prefix + percent-encoded HL7 coding system id for local code systems (``L``, ``99LAB``)."""
EXT_PREFIX: Final = "StructureDefinition/"


class Ext(StrEnum):
    """Our extensions (``Extension.url`` = base + ``StructureDefinition/`` + value)."""

    VALUE_TYPE = "hl7v2-value-type"
    """``Observation``: valueCode, HL7 table 0125 type of the result as received."""
    ATTACHMENT = "observation-attachment"
    """``Observation``: valueAttachment, one per ``LabResult.attachments`` (R4 has no
    ``valueAttachment``; an ``ED`` result has no ``value[x]`` and its data is here)."""
    MESSAGE_STATUS = "message-status"
    """``Communication``: valueCode sent | delivered | read (finer than event-status)."""
    APPROVED = "careplan-approved"
    """``CarePlan``: valueDateTime, ``TreatmentPlan.approvedAt``."""
    ACKNOWLEDGED = "careplan-acknowledged"
    """``CarePlan``: valueDateTime, ``TreatmentPlan.acknowledgedAt``."""
    SPECIALTY = "practitioner-specialty"
    """``Practitioner``: valueString, ``ProviderProfile.specialty``."""
    CLINIC = "practitioner-clinic"
    """``Practitioner``: valueString, ``ProviderProfile.clinic``."""


@lru_cache(maxsize=1024)
def local_uri(base: str, suffix: str) -> str:
    """One of our URIs: ``<system_base>/<suffix>`` (memoized: a search page builds a few per resource
    from the same handful of suffixes)."""
    return f"{base.rstrip('/')}/{suffix}"


# --- coding systems: HL7 table 0396 id <-> FHIR system URI --------------------------
CODING_SYSTEMS: Final[dict[str, str]] = {
    "LN": LOINC,
    "SCT": SNOMED,
    "UCUM": UCUM,
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "C4": "http://www.ama-assn.org/go/cpt",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "HL70078": "http://terminology.hl7.org/CodeSystem/v2-0078",
}
"""HL7 v2 table 0396 coding-system ids with a FHIR canonical system."""
SYSTEM_IDS: Final[dict[str, str]] = {uri: sid for sid, uri in CODING_SYSTEMS.items()}


def system_uri(base: str, system_id: str) -> str:
    """FHIR ``Coding.system`` for an HL7 coding-system id; local ids get our own URI."""
    return CODING_SYSTEMS.get(system_id) or local_uri(base, CS_V2_PREFIX + quote(system_id, safe=""))


def system_id(base: str, uri: str) -> str | None:
    """Inverse of :func:`system_uri`; ``None`` for a system we do not know."""
    if uri in SYSTEM_IDS:
        return SYSTEM_IDS[uri]
    prefix = local_uri(base, CS_V2_PREFIX)
    if uri.startswith(prefix) and len(uri) > len(prefix):
        return unquote(uri[len(prefix) :])
    return None


class ValueType(StrEnum):
    """HL7 v2 table 0125 value types ``LabResult.valueType`` may hold."""

    NM = "NM"
    SN = "SN"
    ST = "ST"
    TX = "TX"
    FT = "FT"
    CE = "CE"
    CWE = "CWE"
    DT = "DT"
    TS = "TS"
    ED = "ED"


TEXT_TYPES: Final = frozenset({ValueType.ST, ValueType.TX, ValueType.FT})
CODED_TYPES: Final = frozenset({ValueType.CE, ValueType.CWE})
DATE_TYPES: Final = frozenset({ValueType.DT, ValueType.TS})

OBSERVATION_STATUS: Final = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error"}
)
"""``Observation.status`` (required binding ``observation-status``), minus ``unknown`` which
``LabResult.status`` cannot hold. Native and FHIR codes are identical."""

VISIBILITY: Final = frozenset({"patient-only", "provider-only", "shared"})
"""``LabResult.visibility``, carried as ``meta.security`` from :data:`CS_VISIBILITY`."""

INTERPRETATION: Final[dict[str, str]] = {
    "N": "Normal",
    "L": "Low",
    "H": "High",
    "LL": "Critical low",
    "HH": "Critical high",
    "LU": "Significantly low",
    "HU": "Significantly high",
    "<": "Off scale low",
    ">": "Off scale high",
    "A": "Abnormal",
    "AA": "Critical abnormal",
    "U": "Significant change up",
    "D": "Significant change down",
    "B": "Better",
    "W": "Worse",
    "S": "Susceptible",
    "R": "Resistant",
    "I": "Intermediate",
    "NS": "Non-susceptible",
    "SDD": "Susceptible-dose dependent",
    "POS": "Positive",
    "NEG": "Negative",
    "IND": "Indeterminate",
    "DET": "Detected",
    "ND": "Not detected",
    "E": "Equivocal",
    "RR": "Reactive",
    "WR": "Weakly reactive",
    "NR": "Non-reactive",
}
"""HL7 v2 table 0078 abnormal flags -> ``v3-ObservationInterpretation`` display. The codes
are identical in both tables; a flag missing here is sent as ``interpretation.text`` only."""

GENDER: Final = frozenset({"male", "female", "other", "unknown"})
"""``Patient.gender`` (required binding ``administrative-gender``); native codes identical."""

CAREPLAN_STATUS: Final[dict[str, str]] = {
    "draft": "draft",
    "active": "active",
    "completed": "completed",
    "revoked": "revoked",
}
"""``TreatmentPlan.status`` -> ``CarePlan.status`` (required binding ``request-status``)."""
CAREPLAN_INTENT: Final = "plan"
"""``CarePlan.intent`` (required binding ``care-plan-intent``): we store plans only."""
CAREPLAN_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
CAREPLAN_CATEGORY_CODE: Final = "assess-plan"
"""``CarePlan.category``: every treatment plan is an assessment-and-plan of treatment (US Core)."""

APPOINTMENT_STATUS: Final[dict[str, str]] = {
    "scheduled": "booked",
    "canceled": "cancelled",
    "completed": "fulfilled",
    "no-show": "noshow",
}
"""``Appointment.status`` native -> FHIR (required binding ``appointmentstatus``)."""

MESSAGE_STATUS: Final[dict[str, str]] = {
    "sent": "in-progress",
    "delivered": "completed",
    "read": "completed",
}
"""``Message.status`` -> ``Communication.status`` (required binding ``event-status``): a sent
message is still in transit; once delivered the communication event is complete. The
native code itself travels in the :attr:`Ext.MESSAGE_STATUS` extension."""
MESSAGE_STATUS_DEFAULT: Final[dict[str, str]] = {"in-progress": "sent", "completed": "delivered"}
"""FHIR -> native when the extension is absent."""


def invert(table: dict[str, str]) -> dict[str, str]:
    """FHIR -> native for a one-to-one status table."""
    return {fhir: native for native, fhir in table.items()}


# --- AuditEvent (IHE BALP) ------------------------------------------------------------
AUDIT_ACTIONS: Final[dict[str, tuple[str, str, str]]] = {
    "create": ("C", RESTFUL_INTERACTION, "create"),
    "read": ("R", RESTFUL_INTERACTION, "read"),
    "vread": ("R", RESTFUL_INTERACTION, "vread"),
    "history": ("R", RESTFUL_INTERACTION, "history-instance"),
    "update": ("U", RESTFUL_INTERACTION, "update"),
    "patch": ("U", RESTFUL_INTERACTION, "patch"),
    "delete": ("D", RESTFUL_INTERACTION, "delete"),
    "search": ("E", RESTFUL_INTERACTION, "search-type"),
    "execute": ("E", RESTFUL_INTERACTION, "operation"),
    "batch": ("E", RESTFUL_INTERACTION, "batch"),
    "transaction": ("E", RESTFUL_INTERACTION, "transaction"),
    "login": ("E", DICOM_DCM, "110122"),
    "login-failed": ("E", DICOM_DCM, "110122"),
    "logout": ("E", DICOM_DCM, "110123"),
    "signup": ("C", DICOM_DCM, "110137"),
    "activate": ("U", DICOM_DCM, "110137"),
    "publish": ("C", DICOM_DCM, "110107"),
}
"""Native audit action -> (``AuditEvent.action`` C/R/U/D/E, subtype system, subtype code).
RESTful ones get type ``audit-event-type#rest``; the DICOM ones get the type in :data:`AUDIT_DICOM_TYPES`."""
SUBTYPE_DISPLAY: Final[dict[str, str]] = {
    "110122": "Login",
    "110123": "Logout",
    "110137": "User Security Attributes Changed",
    "110107": "Import",
}
AUDIT_DICOM_TYPES: Final[dict[str, tuple[str, str]]] = {
    "110122": ("110114", "User Authentication"),
    "110123": ("110114", "User Authentication"),
    "110137": ("110113", "Security Alert"),
    "110107": ("110107", "Import"),
}
"""DICOM subtype -> DICOM event type (code, display): a sign-up or a portal activation changes who may
see a chart (Security Alert / User Security Attributes Changed); an HL7 result is an Import."""

AUDIT_OUTCOMES: Final[dict[str, str]] = {
    "success": "0",
    "minor-failure": "4",
    "failure": "4",
    "denied": "8",
    "serious-failure": "8",
    "error": "12",
    "major-failure": "12",
}
"""``AuditLog.outcome`` -> ``AuditEvent.outcome`` (0 success, 4 minor, 8 serious, 12 major);
any other native outcome is a minor failure with the code in ``outcomeDesc``."""

FHIR_TYPES: Final[dict[str, str]] = {
    "PatientProfile": "Patient",
    "ProviderProfile": "Practitioner",
    "LabResult": "Observation",
    "TreatmentPlan": "CarePlan",
    "Message": "Communication",
    "Appointment": "Appointment",
    "AuditLog": "AuditEvent",
}
"""Native class -> FHIR resource type (the FHIR id is the native ``objectId``)."""
