"""What every FHIR interaction receives: the transport-neutral request, response and app context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.fhir.cursor import CursorCodec
from gateway.fhir.params import SearchContext
from gateway.policy.principal import Principal
from gateway.policy.scopes import Restriction
from gateway.records.service import Records
from gateway.settings import Settings
from mappings.native_fhir import MappingOptions


@dataclass(frozen=True, slots=True)
class FhirRequest:
    """One interaction as the router sees it: no Litestar, no HTTP objects."""

    method: str
    principal: Principal
    params: list[tuple[str, str]] = field(default_factory=list)
    """Query parameters in order (for ``POST _search`` the form body as well)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-case header names."""
    body: bytes = b""
    restrictions: tuple[Restriction, ...] | None = None
    """SMART v2 query restrictions of the caller's token for this interaction (set by
    ``gateway.fhir.scoping``); search ANDs them in, so every page and total respects them."""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class FhirResponse:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    encoded: bytes | None = None
    """``body`` already encoded as JSON, when the read path kept it (``render.kept_json``)."""


@dataclass(frozen=True, slots=True)
class FhirContext:
    settings: Settings
    records: Records
    options: MappingOptions
    search: SearchContext
    cursors: CursorCodec

    @classmethod
    def build(cls, settings: Settings, records: Records) -> FhirContext:
        base = settings.base_url.rstrip("/")
        options = MappingOptions(base_url=base + "/fhir")
        search = SearchContext(base_url=base, mrn_system=options.mrn_system, system_base=options.system_base)
        return cls(settings, records, options, search, CursorCodec(settings.master_key))

    @property
    def fhir_base(self) -> str:
        return self.settings.base_url.rstrip("/") + "/fhir"
