"""ADT (HL7 v2.5.1 Chapter 3) -> :class:`PatientDraft` (demographics only).

A01 admit, A04 register, A08 update, A28 add person, A31 update person: PID
only. A40 (merge patient) is classified but not applied: an explicit issue,
so the gateway answers AE and keeps the message in the dead-letter log.
"""

from __future__ import annotations

from dataclasses import dataclass

from .drafts import MessageHeader, PatientDraft
from .er7 import Er7Message
from .errors import Hl7Error
from .fields import Reader
from .header import MessageKind, check_supported, read_header, to_message
from .oru import ParseOptions
from .patient import read_patient
from .tables import ErrorCode

__all__ = ["AdtResult", "parse_adt"]


@dataclass
class AdtResult:
    """One ADT message: header, trigger kind, the patient draft, and issues."""

    header: MessageHeader
    kind: MessageKind
    patient: PatientDraft | None
    issues: list[Hl7Error]


def parse_adt(message: str | bytes | Er7Message, options: ParseOptions | None = None) -> AdtResult:
    """Map ADT^A01/A04/A08/A28/A31; A40 yields an E issue (merge not supported).

    Raises :class:`Hl7Error` only for AR conditions (not ADT, unsupported version).
    """
    options = options or ParseOptions()
    msg = to_message(message)
    header = read_header(msg, options.default_tz)
    kind = check_supported(header)
    if not kind.value.startswith("ADT"):
        raise Hl7Error(ErrorCode.UNSUPPORTED_MESSAGE_TYPE, "MSH", 1, 9, "not an ADT message")
    issues = list(msg.issues)
    r = Reader(msg.encoding, issues, options.default_tz)
    pid = msg.first("PID")
    if kind is MessageKind.ADT_A40:
        issues.append(
            Hl7Error(
                ErrorCode.UNSUPPORTED_EVENT_CODE,
                "MSH",
                1,
                9,
                "patient merge (A40) is not supported; nothing applied",
                component=2,
            )
        )
        return AdtResult(header, kind, None, issues)
    if pid is None:
        issues.append(Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "PID", None, None, "no PID segment"))
        return AdtResult(header, kind, None, issues)
    return AdtResult(header, kind, read_patient(r, pid), issues)
