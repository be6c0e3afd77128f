"""HL7 v2 code tables used by the ingestion layer, kept as data.

Every table cites its HL7 v2 table number. Lookups never echo an unknown code
through: callers get ``None`` and must report an explicit mapping issue.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "ABNORMAL_FLAGS",
    "CODING_SYSTEMS",
    "OBSERVATION_STATUS",
    "RESULT_STATUS",
    "SEX",
    "SUPPORTED_VERSIONS",
    "AckCode",
    "ErrorCode",
    "Severity",
    "ValueType",
    "coding_system_uri",
]


class AckCode(StrEnum):
    """HL7 Table 0008, Acknowledgment code (MSA-1), original mode."""

    AA = "AA"  # Application Accept
    AE = "AE"  # Application Error
    AR = "AR"  # Application Reject


class ErrorCode(StrEnum):
    """HL7 Table 0357, Message error condition codes (ERR-3, v2.5+).

    The value is the numeric code; ``text`` gives the table's display.
    """

    ACCEPTED = "0"
    SEGMENT_SEQUENCE_ERROR = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE_ERROR = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    VALUE_TOO_LONG = "104"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT_CODE = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION_ID = "203"
    UNKNOWN_KEY_IDENTIFIER = "204"
    DUPLICATE_KEY_IDENTIFIER = "205"
    APPLICATION_RECORD_LOCKED = "206"
    APPLICATION_INTERNAL_ERROR = "207"

    @property
    def text(self) -> str:
        """Display text from HL7 Table 0357."""
        return _ERROR_TEXT[self]


_ERROR_TEXT: Final[dict[ErrorCode, str]] = {
    ErrorCode.ACCEPTED: "Message accepted",
    ErrorCode.SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE_ERROR: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.VALUE_TOO_LONG: "Value too long",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    ErrorCode.APPLICATION_RECORD_LOCKED: "Application record locked",
    ErrorCode.APPLICATION_INTERNAL_ERROR: "Application internal error",
}


class Severity(StrEnum):
    """HL7 Table 0516, Error severity (ERR-4): E error, W warning, I information."""

    ERROR = "E"
    WARNING = "W"
    INFORMATION = "I"


class ValueType(StrEnum):
    """HL7 Table 0125, Value type (OBX-2): the subset the portal stores."""

    NM = "NM"  # numeric
    SN = "SN"  # structured numeric
    ST = "ST"  # string
    TX = "TX"  # text data
    FT = "FT"  # formatted text
    CE = "CE"  # coded entry (v2.5 and earlier)
    CWE = "CWE"  # coded with exceptions
    CNE = "CNE"  # coded with no exceptions
    DT = "DT"  # date
    TS = "TS"  # time stamp (v2.5 and earlier)
    DTM = "DTM"  # date/time (v2.6+)
    TM = "TM"  # time
    ED = "ED"  # encapsulated data
    RP = "RP"  # reference pointer


OBSERVATION_STATUS: Final[dict[str, str]] = {
    "A": "amended",
    "B": "amended",  # appended report: no IG mapping; results unchanged, information added
    "C": "corrected",
    "D": "entered-in-error",
    "F": "final",
    "I": "registered",
    "N": "cancelled",
    "O": "registered",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "U": "final",
    "V": "final",
    "W": "entered-in-error",
    "X": "cancelled",
}
"""HL7 Table 0085, Observation result status (OBX-11) -> FHIR ``Observation.status``.

Follows the HL7 v2-to-FHIR ConceptMap ``table-hl70085-to-observation-status``;
B (appended report) has no map there and is treated as amended.
"""

RESULT_STATUS: Final[dict[str, str]] = {
    "O": "registered",
    "I": "registered",
    "S": "registered",
    "A": "partial",
    "P": "preliminary",
    "C": "corrected",
    "R": "partial",
    "F": "final",
    "X": "cancelled",
    "Y": "unknown",
    "Z": "unknown",
}
"""HL7 Table 0123, Result status (OBR-25) -> FHIR ``DiagnosticReport.status``."""

ABNORMAL_FLAGS: Final[dict[str, str]] = {
    code: code
    for code in [
        "L",
        "LL",
        "H",
        "HH",
        "<",
        ">",
        "N",
        "A",
        "AA",
        "S",
        "R",
        "I",
        "U",
        "D",
        "B",
        "W",
        "MS",
        "VS",
        "POS",
        "NEG",
        "IND",
        "E",
        "EX",
        "HX",
        "LX",
        "HU",
        "LU",
        "NR",
        "RR",
        "QCF",
        "TOX",
        "CAR",
        "AC",
        "IE",
        "SDD",
        "SYN-R",
        "SYN-S",
    ]
}
"""HL7 Table 0078, Interpretation codes (OBX-8).

v2 codes are kept as-is: they are the codes of FHIR's
``http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation``.
"""

SEX: Final[dict[str, str]] = {
    "M": "male",
    "F": "female",
    "O": "other",
    "A": "other",  # ambiguous
    "N": "other",  # not applicable
    "U": "unknown",
}
"""HL7 Table 0001, Administrative sex (PID-8) -> FHIR ``AdministrativeGender``."""

CODING_SYSTEMS: Final[dict[str, str]] = {
    "LN": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "UCUM": "http://unitsofmeasure.org",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "HL70078": "http://terminology.hl7.org/CodeSystem/v2-0078",
    "HL70085": "http://terminology.hl7.org/CodeSystem/v2-0085",
    "HL70123": "http://terminology.hl7.org/CodeSystem/v2-0123",
}
"""HL7 Table 0396, Coding system (CWE-3/CWE-6) -> FHIR system URI.

The same URIs as the HL7 v2-to-FHIR IG. ``99zzz`` / ``L`` are local systems
and, like any id missing here, have no URI.
"""

SUPPORTED_VERSIONS: Final[frozenset[str]] = frozenset(
    {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}
)
"""HL7 Table 0104, Version ID (MSH-12): the versions this gateway accepts."""


def coding_system_uri(system_id: str | None) -> str | None:
    """FHIR system URI for an HL7 Table 0396 coding-system id, ``None`` when unknown or local."""
    if not system_id:
        return None
    return CODING_SYSTEMS.get(system_id.strip().upper())
