"""Field access and the composite data types the portal reads (HL7 v2.5.1 Chapter 2A).

A :class:`Reader` splits raw ER7 into repetitions/components/subcomponents with
the message's own delimiters, decodes escapes at the leaves, and records every
problem as a located :class:`Hl7Error` instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from .dtm import Dtm, parse_dtm
from .er7 import Segment
from .errors import Hl7Error
from .escape import Encoding, unescape
from .tables import ErrorCode, Severity

__all__ = ["Coded", "Identifier", "PersonName", "Reader"]


@dataclass(frozen=True)
class Coded:
    """CE/CWE/CNE (2A.8, 2A.13): identifier, text, coding system, alternates, original text."""

    code: str
    display: str
    system: str
    alt_code: str = ""
    alt_display: str = ""
    alt_system: str = ""
    original_text: str = ""


@dataclass(frozen=True)
class Identifier:
    """CX (2A.14) or the id part of XCN (2A.89): value, assigning authority (HD), type (Table 0203)."""

    value: str
    authority: str
    type_code: str


@dataclass(frozen=True)
class PersonName:
    """XPN (2A.88) or the name part of XCN: family (FN.1), given, middle, suffix, prefix, degree, type (Table 0200)."""

    family: str
    given: str
    middle: str
    suffix: str
    prefix: str
    degree: str
    name_type: str

    @property
    def display(self) -> str:
        """ "Given Middle Family Suffix", the way a portal shows a name."""
        return " ".join(p for p in (self.prefix, self.given, self.middle, self.family, self.suffix) if p)


class Reader:
    """Reads fields of one message; collects issues in ``issues``."""

    def __init__(self, enc: Encoding, issues: list[Hl7Error], default_tz: tzinfo) -> None:
        self.enc = enc
        self.issues = issues
        self.default_tz = default_tz

    def issue(
        self,
        code: ErrorCode,
        seg: Segment | None,
        field: int | None,
        message: str,
        severity: Severity = Severity.ERROR,
        component: int | None = None,
    ) -> Hl7Error:
        """Record (and return) a located issue."""
        err = Hl7Error(
            code, seg.name if seg else None, seg.position if seg else None, field, message, severity, component
        )
        self.issues.append(err)
        return err

    def reps(self, seg: Segment, n: int) -> list[str]:
        """Raw repetitions of field n (empty repetitions dropped)."""
        return [r for r in seg.raw(n).split(self.enc.repetition) if r]

    def parts(self, raw: str) -> list[str]:
        """Raw components of one repetition."""
        return raw.split(self.enc.component)

    def decode(self, raw: str, seg: Segment, n: int, comp: int | None = None) -> str:
        """Unescape one leaf; malformed escapes are kept literally and reported (Table 0357 code 102)."""
        text, problems = unescape(raw, self.enc)
        for problem in problems:
            self.issue(ErrorCode.DATA_TYPE_ERROR, seg, n, problem, Severity.WARNING, comp)
        return text

    def comp(self, seg: Segment, n: int, c: int = 1, rep: str | None = None, sub: int = 1) -> str:
        """Component c (1-based), subcomponent ``sub``, of a repetition (default the first), decoded."""
        raw = rep if rep is not None else (self.reps(seg, n) or [""])[0]
        parts = self.parts(raw)
        value = parts[c - 1] if c <= len(parts) else ""
        subs = value.split(self.enc.subcomponent)
        leaf = subs[sub - 1] if sub <= len(subs) else ""
        return self.decode(leaf, seg, n, c).strip()

    def text(self, seg: Segment, n: int) -> str:
        """Field n as one decoded string (first component of the first repetition)."""
        return self.comp(seg, n)

    def coded(self, seg: Segment, n: int, rep: str | None = None) -> Coded:
        """CE/CWE field n (or one repetition of it)."""
        values = [self.comp(seg, n, c, rep) for c in (1, 2, 3, 4, 5, 6, 9)]
        return Coded(*values)

    def identifier(self, seg: Segment, n: int, rep: str) -> Identifier:
        """CX repetition: value CX.1, authority CX.4 (HD namespace id, else universal id), type CX.5."""
        authority = self.comp(seg, n, 4, rep) or self.comp(seg, n, 4, rep, sub=2)
        return Identifier(self.comp(seg, n, 1, rep), authority, self.comp(seg, n, 5, rep))

    def name(self, seg: Segment, n: int, rep: str, offset: int = 0) -> PersonName:
        """XPN repetition (offset 0) or the name inside an XCN (offset 1)."""
        c = [self.comp(seg, n, i + offset, rep) for i in range(1, 8)]
        return PersonName(c[0], c[1], c[2], c[3], c[4], c[5], c[6])

    def dtm(self, seg: Segment, n: int, raw: str | None = None) -> Dtm | None:
        """DTM/TS field n (TS.1); ``None`` when empty; an invalid value is a 102 issue."""
        text = raw if raw is not None else self.comp(seg, n)
        if not text:
            return None
        try:
            return parse_dtm(text, self.default_tz)
        except ValueError as exc:
            self.issue(ErrorCode.DATA_TYPE_ERROR, seg, n, f"invalid date/time: {exc}")
            return None
