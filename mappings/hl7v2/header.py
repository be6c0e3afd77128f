"""MSH (HL7 v2.5.1 section 2.14.9) -> :class:`MessageHeader`, and message classification.

``classify`` answers what the gateway does with a message: ORU^R01 and the
supported ADT triggers are processed; anything else is rejected (AR) with
HL7 Table 0357 code 200 (message type), 201 (event) or 203 (version, Table 0104).
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from enum import StrEnum

from .drafts import MessageHeader
from .er7 import Er7Message, decode, parse_message
from .errors import Hl7Error
from .fields import Reader
from .tables import SUPPORTED_VERSIONS, ErrorCode

__all__ = ["MessageKind", "check_supported", "classify", "read_header", "to_message"]


class MessageKind(StrEnum):
    """What a message is, for routing (MSH-9 message type ^ trigger event, Tables 0076/0003)."""

    ORU_R01 = "ORU^R01"
    ADT_A01 = "ADT^A01"
    ADT_A04 = "ADT^A04"
    ADT_A08 = "ADT^A08"
    ADT_A28 = "ADT^A28"
    ADT_A31 = "ADT^A31"
    ADT_A40 = "ADT^A40"


def to_message(message: str | bytes | Er7Message) -> Er7Message:
    """Decode (MSH-18) and parse when needed; charset issues are kept on the message."""
    if isinstance(message, Er7Message):
        return message
    decoded = decode(message)
    parsed = parse_message(decoded.text)
    parsed.issues[:0] = decoded.issues
    return parsed


def read_header(msg: Er7Message, default_tz: tzinfo = UTC) -> MessageHeader:
    """Read MSH; a missing MSH-9 or MSH-10 raises (the message cannot be acknowledged properly)."""
    issues: list[Hl7Error] = []
    r = Reader(msg.encoding, issues, default_tz)
    msh = msg.msh
    when = r.dtm(msh, 7)
    header = MessageHeader(
        sending_application=r.text(msh, 3),
        sending_facility=r.text(msh, 4),
        receiving_application=r.text(msh, 5),
        receiving_facility=r.text(msh, 6),
        message_datetime=when.value if when else None,
        message_type=r.comp(msh, 9, 1).upper(),
        trigger_event=r.comp(msh, 9, 2).upper(),
        message_structure=r.comp(msh, 9, 3).upper(),
        control_id=r.text(msh, 10),
        processing_id=r.text(msh, 11),
        version=r.text(msh, 12),
        accept_ack_type=r.text(msh, 15),
        application_ack_type=r.text(msh, 16),
        character_set=r.text(msh, 18),
        field_separator=msg.encoding.field,
        encoding_characters=msg.encoding.characters,
        routing_raw=(msh.raw(3), msh.raw(4), msh.raw(5), msh.raw(6)),
    )
    msg.issues.extend(i for i in issues if i not in msg.issues)
    return header


def _check(header: MessageHeader) -> MessageKind:
    if not header.message_type:
        raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "MSH", 1, 9, "message type (MSH-9) is empty")
    if not header.control_id:
        raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "MSH", 1, 10, "message control id (MSH-10) is empty")
    if header.version not in SUPPORTED_VERSIONS:
        raise Hl7Error(
            ErrorCode.UNSUPPORTED_VERSION_ID,
            "MSH",
            1,
            12,
            f"version {header.version[:10]!r} not supported (2.3 to 2.8.2)",
        )
    if header.message_type not in ("ORU", "ADT"):
        raise Hl7Error(ErrorCode.UNSUPPORTED_MESSAGE_TYPE, "MSH", 1, 9, "message type not supported", component=1)
    try:
        return MessageKind(f"{header.message_type}^{header.trigger_event}")
    except ValueError:
        raise Hl7Error(
            ErrorCode.UNSUPPORTED_EVENT_CODE, "MSH", 1, 9, "trigger event not supported", component=2
        ) from None


def classify(message: str | bytes | Er7Message) -> MessageKind:
    """The kind of a supported message; raises :class:`Hl7Error` (an AR) for anything else.

    ADT^A40 classifies (so it can be answered AE "merge not supported"), see ``adt``.
    """
    msg = to_message(message)
    return _check(read_header(msg))


def check_supported(header: MessageHeader) -> MessageKind:
    """Like :func:`classify` for an already-read header."""
    return _check(header)
