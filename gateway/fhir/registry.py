"""The one FHIR registry: resource type -> native class, mapping, search parameters, interactions.

The Litestar routes (``routes``), the dispatcher (``router``) and ``GET /fhir/metadata``
(``capability``) are all generated from :data:`RESOURCES`, so what the
CapabilityStatement says is exactly what the server does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from gateway.fhir.params import (
    BooleanParam,
    CodeSetParam,
    CodingParam,
    DateParam,
    FixedTokenParam,
    IdParam,
    PeriodParam,
    QuantityParam,
    ReferenceParam,
    RefPath,
    SearchContext,
    SearchParam,
    StringParam,
    TokenParam,
    TypedIdParam,
    Via,
    reference,
)
from mappings.native_fhir import REGISTRY as MAPPINGS
from mappings.native_fhir import ResourceMapping
from mappings.native_fhir.codes import (
    APPOINTMENT_STATUS,
    AUDIT_ACTIONS,
    AUDIT_DICOM_TYPES,
    AUDIT_EVENT_TYPE,
    CAREPLAN_CATEGORY,
    CAREPLAN_CATEGORY_CODE,
    CAREPLAN_STATUS,
    CS_AUDIT_ACTION,
    DICOM_DCM,
    FHIR_TYPES,
    NPI,
    OBSERVATION_CATEGORY,
    SID_CONVERSATION,
    UCUM,
    ValueType,
    local_uri,
    system_id,
)


class Interaction(StrEnum):
    """FHIR ``TypeRestfulInteraction`` codes."""

    READ = "read"
    VREAD = "vread"
    HISTORY_INSTANCE = "history-instance"
    HISTORY_TYPE = "history-type"
    SEARCH_TYPE = "search-type"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system")
"""``CapabilityStatement.rest.interaction``: ``POST /fhir`` (both Bundle types) and ``GET /fhir/_history``."""
READ_ONLY = frozenset({Interaction.READ, Interaction.VREAD, Interaction.HISTORY_INSTANCE, Interaction.SEARCH_TYPE})
READ_WRITE = READ_ONLY | {Interaction.HISTORY_TYPE, Interaction.CREATE, Interaction.UPDATE, Interaction.DELETE}
ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"


def _inverse(native_to_fhir: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for native, fhir in native_to_fhir.items():
        out.setdefault(fhir, []).append(native)
    return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class ResourceDef:
    type: str
    mapping: ResourceMapping
    interactions: frozenset[Interaction]
    params: Mapping[str, SearchParam]
    sorts: Mapping[str, str] = field(default_factory=dict)
    """``_sort`` name -> native column (``_lastUpdated`` -> ``updatedAt``)."""
    admin_only: bool = False
    """AuditEvent: only admins (and the master key) reach it through this door."""

    @property
    def class_name(self) -> str:
        return self.mapping.native_class

    def supports(self, interaction: Interaction) -> bool:
        return interaction in self.interactions


def _common(*params: SearchParam) -> dict[str, SearchParam]:
    out: dict[str, SearchParam] = {
        "_id": IdParam(),
        "_lastUpdated": DateParam("_lastUpdated", "updatedAt", "When the resource last changed"),
    }
    out.update({p.name: p for p in params})
    return out


def _patient_ref(column: str = "patient") -> tuple[ReferenceParam, ReferenceParam]:
    return (
        reference("patient", "Patient", column, "The patient the record is about"),
        reference("subject", "Patient", column, "The subject (always a Patient)"),
    )


def _person(name: str, column: str, documentation: str) -> ReferenceParam:
    """A ``_User`` column shown as a Patient or Practitioner reference (Communication sender, AuditEvent agent)."""
    paths = (RefPath("Patient", column, Via.USER), RefPath("Practitioner", column, Via.USER))
    return ReferenceParam(name, paths, documentation)


_ACTION_CODE = "http://hl7.org/fhir/audit-event-action"
_AUDIT_SUBTYPES = {
    (system, sub): tuple(a for a, v in AUDIT_ACTIONS.items() if v[1:] == (system, sub))
    for _, system, sub in AUDIT_ACTIONS.values()
}
_AUDIT_TYPES = {
    (AUDIT_EVENT_TYPE, "rest"): tuple(a for a, v in AUDIT_ACTIONS.items() if v[1] != DICOM_DCM),
    **{
        (DICOM_DCM, code): tuple(
            a for a, v in AUDIT_ACTIONS.items() if v[1] == DICOM_DCM and AUDIT_DICOM_TYPES[v[2]][0] == code
        )
        for code in dict.fromkeys(t for t, _ in AUDIT_DICOM_TYPES.values())
    },
}
"""``AuditEvent.type`` -> native actions: ``rest``, or the DICOM event type of each DICOM subtype
(110114 User Authentication, 110113 Security Alert, 110107 Import: ``codes.AUDIT_DICOM_TYPES``)."""
_AUDIT_ACTION_CODES = {
    (_ACTION_CODE, code): tuple(a for a, v in AUDIT_ACTIONS.items() if v[0] == code)
    for code in dict.fromkeys(v[0] for v in AUDIT_ACTIONS.values())
}
_ENTITY_TYPES = {fhir: (*(n for n, f in FHIR_TYPES.items() if f == fhir), fhir) for fhir in FHIR_TYPES.values()}


def _mrn(ctx: SearchContext) -> str:
    return ctx.mrn_system


def _conversation(ctx: SearchContext) -> str:
    return local_uri(ctx.system_base, SID_CONVERSATION)


def _def(
    type_: str,
    params: dict[str, SearchParam],
    *,
    interactions: frozenset[Interaction] = READ_WRITE,
    date: str | None = None,
    admin_only: bool = False,
) -> ResourceDef:
    sorts = {"_lastUpdated": "updatedAt"}
    if date:
        sorts["date"] = date
    return ResourceDef(type_, MAPPINGS[type_], interactions, MappingProxyType(params), sorts, admin_only)


RESOURCES: Mapping[str, ResourceDef] = MappingProxyType(
    {
        d.type: d
        for d in (
            _def(
                "Patient",
                _common(
                    TokenParam("identifier", "medicalRecordNumber", "Medical record number", system_of=_mrn),
                    StringParam("name", ("familyName", "givenName", "displayName"), "Any part of the name"),
                    StringParam("family", ("familyName",), "Family name"),
                    StringParam("given", ("givenName",), "Given name"),
                    DateParam("birthdate", "dateOfBirth", "Date of birth", as_text=True),
                    TokenParam("gender", "gender", "Administrative gender", systems=(ADMINISTRATIVE_GENDER,)),
                    BooleanParam("active", "isActive", "Whether the record is in active use"),
                    reference("general-practitioner", "Practitioner", "careTeam", "A care-team practitioner", Via.JOIN),
                ),
            ),
            _def(
                "Practitioner",
                _common(
                    TokenParam("identifier", "npi", "National Provider Identifier", systems=(NPI,)),
                    StringParam("name", ("displayName",), "Display name"),
                ),
            ),
            _def(
                "Observation",
                _common(
                    *_patient_ref(),
                    CodingParam("code", "Test code (system|code)", system_id=system_id),
                    DateParam("date", "effectiveAt", "Clinically relevant time (effectiveDateTime)"),
                    TokenParam("status", "status", "Observation status"),
                    FixedTokenParam("category", OBSERVATION_CATEGORY, "laboratory", "Category (laboratory)"),
                    reference("performer", "Practitioner", "orderedBy", "The ordering practitioner"),
                    QuantityParam(
                        "value-quantity",
                        "resultValue",
                        "valueType",
                        "units",
                        (ValueType.NM.value,),
                        UCUM,
                        "Numeric result ([prefix]number[|system|code]); UCUM or the stored unit text",
                    ),
                ),
                date="effectiveAt",
            ),
            _def(
                "CarePlan",
                _common(
                    *_patient_ref(),
                    TokenParam("status", "status", "Plan status", codes=_inverse(CAREPLAN_STATUS)),
                    PeriodParam("date", "startDate", "endDate", "Time period the plan covers"),
                    FixedTokenParam(
                        "category", CAREPLAN_CATEGORY, CAREPLAN_CATEGORY_CODE, "Category (assess-plan, US Core)"
                    ),
                ),
                date="startDate",
            ),
            _def(
                "Communication",
                _common(
                    *_patient_ref(),
                    DateParam("sent", "sentAt", "When the message was sent"),
                    _person("sender", "from", "Who sent the message (Patient or Practitioner)"),
                    _person("recipient", "to", "Who the message is for (Patient or Practitioner)"),
                    TokenParam(
                        "identifier",
                        "conversationId",
                        "The conversation (thread) the message belongs to",
                        system_of=_conversation,
                    ),
                ),
                date="sentAt",
            ),
            _def(
                "Appointment",
                _common(
                    _patient_ref()[0],
                    reference("practitioner", "Practitioner", "provider", "The practitioner taking part"),
                    ReferenceParam(
                        "actor",
                        (RefPath("Patient", "patient"), RefPath("Practitioner", "provider")),
                        "Any participant (Patient or Practitioner)",
                    ),
                    DateParam("date", "startAt", "Appointment start"),
                    TokenParam("status", "status", "Appointment status", codes=_inverse(APPOINTMENT_STATUS)),
                ),
                date="startAt",
            ),
            _def(
                "AuditEvent",
                _common(
                    DateParam("date", "createdAt", "When the event was recorded"),
                    reference("patient", "Patient", "patient", "The patient the event concerns"),
                    _person("agent", "actor", "The user who acted (Patient or Practitioner)"),
                    TypedIdParam(
                        "entity",
                        "entityType",
                        "entityId",
                        _ENTITY_TYPES,
                        "The resource acted on (or the patient concerned)",
                        extra=(RefPath("Patient", "patient"),),
                    ),
                    CodeSetParam(
                        "action", "action", _AUDIT_ACTION_CODES, "C, R, U, D or E", fallback=(_ACTION_CODE, "E")
                    ),
                    CodeSetParam(
                        "type",
                        "action",
                        _AUDIT_TYPES,
                        "rest, DICOM 110114 (login/logout), 110113 (sign-up, activation), 110107 (HL7 import), "
                        "or the native action under our audit-action system",
                        local_system="{base}/" + CS_AUDIT_ACTION,
                    ),
                    CodeSetParam("subtype", "action", _AUDIT_SUBTYPES, "restful-interaction code or DICOM 110122/3"),
                ),
                interactions=frozenset({Interaction.READ, Interaction.SEARCH_TYPE}),
                date="createdAt",
                admin_only=True,
            ),
        )
    }
)
"""Resource type -> definition; the only list of what the FHIR door serves."""

MANDATORY: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "Patient": (),
        "Practitioner": (),
        "Observation": ("status", "code"),
        "CarePlan": ("status", "intent", "subject"),
        "Communication": ("status",),
        "Appointment": ("status", "participant"),
        "AuditEvent": ("type", "recorded", "agent", "source"),
    }
)
"""Top-level elements with minimum cardinality 1 in R4: ``_elements`` always keeps them (FHIR R4
§3.1.1.5.9 "Servers SHOULD always return mandatory elements")."""

RESULT_PARAMS = frozenset(
    {"_count", "_sort", "_total", "_summary", "_format", "_pretty", "_cursor", "_elements", "_include", "_revinclude"}
)
"""Search result parameters this server understands (never reported as unknown)."""


def references(rdef: ResourceDef) -> dict[str, ReferenceParam]:
    """The reference parameters of a type: what ``_include`` and chains can follow from it."""
    return {name: p for name, p in rdef.params.items() if isinstance(p, ReferenceParam)}


def includes_of(rdef: ResourceDef) -> list[str]:
    """``_include`` values for a search of ``rdef`` (CapabilityStatement ``searchInclude``)."""
    return [f"{rdef.type}:{name}" for name in references(rdef)]


def revincludes_of(rdef: ResourceDef) -> list[str]:
    """``_revinclude`` values for a search of ``rdef``: every reference parameter that can point at it."""
    return [
        f"{source.type}:{name}"
        for source in RESOURCES.values()
        for name, param in references(source).items()
        if rdef.type in param.targets
    ]
