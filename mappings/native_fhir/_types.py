"""Plain data types shared by every mapping: records, resources, options, mapping signatures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

NativeRecord = Mapping[str, Any]
"""A stored native object: Parse field name -> Python value (datetimes aware, pointers as ids)."""

NativeDraft = dict[str, Any]
"""The writable native fields a reverse mapping produces (server-managed fields excluded)."""

FhirResource = dict[str, Any]
"""A FHIR R4 (4.0.1) resource as JSON-ready plain data."""

UserRefs = Mapping[str, str]
"""``_User`` objectId -> ``"Patient/<id>"`` or ``"Practitioner/<id>"``, resolved by the server."""

NO_USERS: UserRefs = MappingProxyType({})
"""Default for ``user_refs``: no ``_User`` resolves (read-only, so safe as a default)."""

DEFAULT_SYSTEM_BASE = "https://portal-gateway.example.org/fhir"


@dataclass(frozen=True, slots=True)
class MappingOptions:
    """Deployment-level choices; every field has a default that the golden files pin."""

    mrn_system: str = f"{DEFAULT_SYSTEM_BASE}/sid/mrn"
    """``Patient.identifier.system`` of the medical record number (type ``MR``)."""
    system_base: str = DEFAULT_SYSTEM_BASE
    """Root of our own identifier systems, code systems and extensions (see :mod:`.codes`)."""
    base_url: str | None = None
    """Public FHIR base; absolute references under it are accepted on writes."""
    audit_source: str = "portal-gateway"
    """``AuditEvent.source.observer.display`` and ``source.site``."""


DEFAULT_OPTIONS = MappingOptions()


class ToFhir(Protocol):
    """Native record -> FHIR resource dict (never raises for stored data)."""

    def __call__(
        self, record: NativeRecord, options: MappingOptions = ..., *, user_refs: UserRefs = ...
    ) -> FhirResource: ...


class FromFhir(Protocol):
    """FHIR resource dict -> native draft; raises :class:`MappingError` on anything lossy."""

    def __call__(
        self, resource: Mapping[str, Any], options: MappingOptions = ..., *, user_refs: UserRefs = ...
    ) -> NativeDraft: ...
