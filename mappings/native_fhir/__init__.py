"""Pure native <-> FHIR R4 (4.0.1) mappings: plain dicts in, plain dicts out.

:data:`REGISTRY` is the one table the FHIR door reads: resource type -> native class,
``to_fhir`` (read path) and ``from_fhir`` (write path; ``None`` for read-only AuditEvent).
Every ``from_fhir`` raises :class:`MappingError` (with ``expression``) for anything it
cannot store faithfully, including unknown codes in required bindings.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import appointment, auditevent, careplan, communication, observation, observation_in, patient, practitioner
from ._errors import Issue, MappingError
from ._types import (
    DEFAULT_OPTIONS,
    NO_USERS,
    FhirResource,
    FromFhir,
    MappingOptions,
    NativeDraft,
    NativeRecord,
    ToFhir,
    UserRefs,
)


@dataclass(frozen=True, slots=True)
class ResourceMapping:
    """One row of :data:`REGISTRY`."""

    resource_type: str
    """FHIR resource type; its ids are the native ``objectId``."""
    native_class: str
    """Parse class name of the stored rows."""
    to_fhir: ToFhir
    from_fhir: FromFhir | None
    """``None``: the resource is read-only."""
    not_carried: tuple[str, ...]
    """Native fields FHIR cannot carry (server-managed on writes)."""


REGISTRY: dict[str, ResourceMapping] = {
    m.resource_type: m
    for m in (
        ResourceMapping("Patient", "PatientProfile", patient.to_fhir, patient.from_fhir, patient.NOT_CARRIED),
        ResourceMapping(
            "Practitioner",
            "ProviderProfile",
            practitioner.to_fhir,
            practitioner.from_fhir,
            practitioner.NOT_CARRIED,
        ),
        ResourceMapping(
            "Observation", "LabResult", observation.to_fhir, observation_in.from_fhir, observation.NOT_CARRIED
        ),
        ResourceMapping("CarePlan", "TreatmentPlan", careplan.to_fhir, careplan.from_fhir, careplan.NOT_CARRIED),
        ResourceMapping(
            "Communication", "Message", communication.to_fhir, communication.from_fhir, communication.NOT_CARRIED
        ),
        ResourceMapping(
            "Appointment", "Appointment", appointment.to_fhir, appointment.from_fhir, appointment.NOT_CARRIED
        ),
        ResourceMapping("AuditEvent", "AuditLog", auditevent.to_fhir, None, ()),
    )
}
"""Resource type -> mapping; generate routes and the CapabilityStatement from this."""

BY_NATIVE_CLASS: dict[str, ResourceMapping] = {m.native_class: m for m in REGISTRY.values()}

__all__ = [
    "BY_NATIVE_CLASS",
    "DEFAULT_OPTIONS",
    "NO_USERS",
    "REGISTRY",
    "FhirResource",
    "FromFhir",
    "Issue",
    "MappingError",
    "MappingOptions",
    "NativeDraft",
    "NativeRecord",
    "ResourceMapping",
    "ToFhir",
    "UserRefs",
]
