"""Located HL7 mapping errors: the single error currency of the HL7 layer.

An :class:`Hl7Error` carries everything an ACK's ERR segment needs
(HL7 v2.5+ ERR-2 location as ERL, ERR-3 Table 0357 code, ERR-4 Table 0516 severity,
ERR-8 user message). It is both raised (when nothing can be mapped) and collected
as an issue (when the rest of the message still applies).
"""

from __future__ import annotations

from dataclasses import dataclass

from .tables import ErrorCode, Severity

__all__ = ["Hl7Error"]


@dataclass(eq=True)
class Hl7Error(Exception):
    """A parse or mapping problem at an ERL location (HL7 data type ERL, ERR-2).

    ``segment`` is the segment id (``"OBX"``), ``position`` its 1-based sequence
    among the message's segments of that id, ``field`` the field number, and
    ``component`` the component number when the problem is that precise.
    ``message`` is the user message (ERR-8): it names the problem and never
    quotes another patient's identifiers.
    """

    code: ErrorCode
    segment: str | None
    position: int | None
    field: int | None
    message: str
    severity: Severity = Severity.ERROR
    component: int | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return f"{self.location or 'message'}: {self.message} ({self.code.value} {self.code.text})"

    __hash__ = Exception.__hash__

    @property
    def location(self) -> str:
        """The location as ``SEG[seq]-field.component``, e.g. ``OBX[2]-5.1``; empty when unlocated."""
        if not self.segment:
            return ""
        text = self.segment
        if self.position is not None:
            text += f"[{self.position}]"
        if self.field is not None:
            text += f"-{self.field}"
            if self.component is not None:
                text += f".{self.component}"
        return text

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able form (golden files, dead-letter reasons)."""
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "location": self.location,
            "message": self.message,
        }
