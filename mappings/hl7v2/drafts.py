"""Plain drafts of native entities produced from HL7 v2 messages.

A draft is what one message says about an entity; the store decides whether it
creates, versions or ignores. Field names follow the native data model
(``PatientProfile``, ``ProviderProfile``, ``LabResult``) in snake_case;
:func:`to_json` renders the camelCase native names.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from .errors import Hl7Error

__all__ = [
    "RESULT_NAMESPACE",
    "MessageHeader",
    "OruResult",
    "PatientDraft",
    "ProviderDraft",
    "ResultDraft",
    "key_id_of",
    "key_id_text",
    "to_json",
]

RESULT_NAMESPACE = uuid.UUID("5b1c54e4-7f0b-4b8e-9a55-2f0e4c9a7d11")
"""uuid5 namespace for LabResult ids derived from the natural key."""


@dataclass(frozen=True)
class MessageHeader:
    """MSH (HL7 v2.5.1 section 2.14.9): who sent what, when, in which version."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_datetime: datetime | None  # MSH-7
    message_type: str  # MSH-9.1
    trigger_event: str  # MSH-9.2
    message_structure: str  # MSH-9.3
    control_id: str  # MSH-10
    processing_id: str  # MSH-11
    version: str  # MSH-12
    accept_ack_type: str = ""  # MSH-15, Table 0155
    application_ack_type: str = ""  # MSH-16, Table 0155
    character_set: str = ""  # MSH-18, Table 0211
    field_separator: str = "|"  # MSH-1
    encoding_characters: str = "^~\\&"  # MSH-2
    routing_raw: tuple[str, str, str, str] = ("", "", "", "")  # MSH-3..6 as raw ER7, mirrored by the ACK


@dataclass
class PatientDraft:
    """PID (section 3.4.2) -> PatientProfile demographics."""

    mrn: str  # PID-3 CX.1 of the MR identifier (else the first)
    mrn_authority: str  # its CX.4 assigning authority
    identifiers: list[dict[str, str]]  # every PID-3 repetition: value, authority, type
    family_name: str
    given_name: str
    middle_name: str
    display_name: str
    date_of_birth: str | None  # PID-7 as YYYY-MM-DD
    gender: str | None  # PID-8 via Table 0001


@dataclass
class ProviderDraft:
    """XCN from ORC-12 / OBR-16 (ordering provider) -> ProviderProfile."""

    source: str  # "ORC-12" or "OBR-16"
    provider_id: str  # XCN.1
    id_authority: str  # XCN.9
    id_type: str  # XCN.13, Table 0203
    npi: str | None  # XCN.1 when XCN.13 is NPI or the authority is the NPI OID
    family_name: str
    given_name: str
    display_name: str


@dataclass
class ResultDraft:
    """One OBX (section 7.4.2) in its ORC/OBR context -> one LabResult version."""

    order_id: str  # filler order number (OBR-3/ORC-3), else placer (OBR-2/ORC-2)
    order_id_kind: str  # "filler" or "placer"
    placer_order: str
    filler_order: str
    test_code: str  # OBX-3.1
    code_system: str  # OBX-3.3 (Table 0396 id, as sent)
    code_system_uri: str | None  # FHIR system for code_system, None when local/unknown
    test_name: str  # OBX-3.2 (else OBX-3.9 original text)
    alternate_code: dict[str, str] | None  # OBX-3.4-6
    sub_id: str  # OBX-4
    value_type: str  # OBX-2, Table 0125
    result_value: str | None  # display string of OBX-5
    result_data: dict[str, Any]  # structured OBX-5 and extras (performing organization, report status)
    units: str | None  # OBX-6.1
    units_system: str | None  # OBX-6.3
    reference_range: str | None  # OBX-7
    interpretation: str | None  # first OBX-8 (Table 0078)
    interpretations: list[str]
    status: str | None  # FHIR Observation.status from OBX-11 via Table 0085
    status_code: str  # OBX-11 as sent
    effective_at: datetime | None  # OBX-14, else OBR-7
    effective_precision: str | None
    effective_source: str | None  # "OBX-14" or "OBR-7"
    reported_at: datetime | None  # OBR-22: orders versions when OBX-14 is equal
    report_status: str | None  # OBR-25 via Table 0123
    notes: str | None  # NTE-3 after the OBX (or its OBR), joined with "\n"
    attachments: list[dict[str, str]]  # ED values
    ordering_provider: str | None  # provider_id of the order's ProviderDraft
    obx_position: int  # sequence of the OBX in the message (ERR-2.2)
    issues: list[Hl7Error] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Natural key: (order id, OBX-3 system, OBX-3 code, OBX-4 sub-id)."""
        return (self.order_id, self.code_system, self.test_code, self.sub_id)

    @property
    def key_id(self) -> uuid.UUID:
        """Deterministic LabResult id: uuid5 over the natural key (plus the sender, by the caller)."""
        return key_id_of(self.key)


def key_id_of(key: tuple[str, str, str, str]) -> uuid.UUID:
    """``ResultDraft.key_id`` for a natural key, for callers that remember ids by key."""
    return uuid.uuid5(RESULT_NAMESPACE, "|".join(key))


_NAMESPACE_BYTES = RESULT_NAMESPACE.bytes


def key_id_text(key: tuple[str, str, str, str]) -> str:
    """``str(key_id_of(key))``, computed as RFC 4122 defines a name-based (SHA-1) UUID without building
    ``uuid.UUID`` objects: the store derives an id from it for every result of every message, and
    the ``uuid`` module's objects cost five times the hash (equality over many keys is a unit test)."""
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "|".join(key).encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class OruResult:
    """Everything one ORU^R01 says, and what could not be applied.

    ``issues`` holds every issue of the message, including each result's own
    (which are also on ``ResultDraft.issues``).
    """

    header: MessageHeader
    patient: PatientDraft | None
    providers: list[ProviderDraft]
    results: list[ResultDraft]
    issues: list[Hl7Error]

    @property
    def has_errors(self) -> bool:
        """True when an issue has severity E (the message answers AE)."""
        return any(i.severity.value == "E" for i in self.issues)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def to_json(value: Any) -> Any:
    """Drafts -> JSON-able data: camelCase keys, ISO datetimes, issues as dicts."""
    if isinstance(value, Hl7Error):
        return value.as_dict()
    if is_dataclass(value) and not isinstance(value, type):
        out = {_camel(f.name): to_json(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, ResultDraft):
            out["keyId"] = str(value.key_id)
        return out
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
