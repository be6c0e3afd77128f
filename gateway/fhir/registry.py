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
    CodingParam,
    DateParam,
    FixedTokenParam,
    IdParam,
    ReferenceParam,
    SearchContext,
    SearchParam,
    StringParam,
    TokenParam,
)
from mappings.native_fhir import REGISTRY as MAPPINGS
from mappings.native_fhir import ResourceMapping
from mappings.native_fhir.codes import APPOINTMENT_STATUS, CAREPLAN_STATUS, NPI, OBSERVATION_CATEGORY, system_id


class Interaction(StrEnum):
    """FHIR ``TypeRestfulInteraction`` codes."""

    READ = "read"
    VREAD = "vread"
    HISTORY_INSTANCE = "history-instance"
    SEARCH_TYPE = "search-type"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


READ_ONLY = frozenset({Interaction.READ, Interaction.VREAD, Interaction.HISTORY_INSTANCE, Interaction.SEARCH_TYPE})
READ_WRITE = READ_ONLY | {Interaction.CREATE, Interaction.UPDATE, Interaction.DELETE}
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


def _patient_ref(column: str = "patient") -> tuple[SearchParam, SearchParam]:
    return (
        ReferenceParam("patient", column, "Patient", "The patient the record is about"),
        ReferenceParam("subject", column, "Patient", "The subject (always a Patient)"),
    )


def _mrn(ctx: SearchContext) -> str:
    return ctx.mrn_system


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
                ),
                date="effectiveAt",
            ),
            _def(
                "CarePlan",
                _common(
                    _patient_ref()[0],
                    TokenParam("status", "status", "Plan status", codes=_inverse(CAREPLAN_STATUS)),
                ),
            ),
            _def(
                "Communication",
                _common(*_patient_ref(), DateParam("sent", "sentAt", "When the message was sent")),
                date="sentAt",
            ),
            _def(
                "Appointment",
                _common(
                    _patient_ref()[0],
                    ReferenceParam("practitioner", "provider", "Practitioner", "The practitioner taking part"),
                    DateParam("date", "startAt", "Appointment start"),
                    TokenParam("status", "status", "Appointment status", codes=_inverse(APPOINTMENT_STATUS)),
                ),
                date="startAt",
            ),
            _def(
                "AuditEvent",
                _common(DateParam("date", "createdAt", "When the event was recorded")),
                interactions=frozenset({Interaction.READ, Interaction.SEARCH_TYPE}),
                date="createdAt",
                admin_only=True,
            ),
        )
    }
)
"""Resource type -> definition; the only list of what the FHIR door serves."""

RESULT_PARAMS = frozenset({"_count", "_sort", "_total", "_summary", "_format", "_pretty", "_cursor"})
"""Search result parameters this server understands (never reported as unknown)."""
