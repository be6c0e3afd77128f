"""Pure HL7 v2 ingestion: ER7 text in, native entity drafts and ACK text out.

No I/O, no database, no framework: the standard library, python-hl7 and plain
data. The gateway's MLLP listener and HTTP route call these functions.
"""

from __future__ import annotations

from .ack import build_ack, build_ack_for_unparseable
from .adt import AdtResult, parse_adt
from .drafts import MessageHeader, OruResult, PatientDraft, ProviderDraft, ResultDraft, to_json
from .dtm import Dtm, parse_dtm
from .er7 import Er7Message, decode, normalize, parse_message, split_batch
from .errors import Hl7Error
from .escape import Encoding, unescape
from .header import MessageKind, classify, read_header
from .oru import ParseOptions, parse_oru
from .tables import AckCode, ErrorCode, Severity, ValueType

__all__ = [
    "AckCode",
    "AdtResult",
    "Dtm",
    "Encoding",
    "Er7Message",
    "ErrorCode",
    "Hl7Error",
    "MessageHeader",
    "MessageKind",
    "OruResult",
    "ParseOptions",
    "PatientDraft",
    "ProviderDraft",
    "ResultDraft",
    "Severity",
    "ValueType",
    "build_ack",
    "build_ack_for_unparseable",
    "classify",
    "decode",
    "normalize",
    "parse_adt",
    "parse_dtm",
    "parse_message",
    "parse_oru",
    "read_header",
    "split_batch",
    "to_json",
    "unescape",
]
