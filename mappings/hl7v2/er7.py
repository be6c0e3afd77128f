"""ER7 (pipe-and-hat) decoding, framing and parsing: bytes in, a located view out.

HL7 v2.5.1 Chapter 2: segments end with CR (2.5.3), MSH-1/MSH-2 define the
delimiters (2.5.4), MSH-18 names the character set (Table 0211), FHS/BHS ...
BTS/FTS wrap batches (2.10.3). python-hl7 raises bare ``ValueError``/``KeyError``/
``IndexError`` on bad input: every failure here becomes an :class:`Hl7Error`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import hl7

from .errors import Hl7Error
from .escape import Encoding
from .tables import ErrorCode, Severity

__all__ = ["Decoded", "Er7Message", "Segment", "decode", "normalize", "parse_message", "split_batch"]

_BOM = "\ufeff"
_CHARSETS: dict[str, str] = {
    "": "utf-8",
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
}
"""HL7 Table 0211, Alternate character sets (MSH-18) -> Python codec."""

_BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})


@dataclass(frozen=True)
class Decoded:
    """Text decoded from bytes, the codec used, and any charset issue."""

    text: str
    codec: str
    issues: list[Hl7Error] = field(default_factory=list)


def _msh18(raw: bytes) -> str:
    """MSH-18 read from the raw bytes (MSH itself is ASCII in every charset we accept)."""
    start = raw.find(b"MSH")
    if start < 0 or len(raw) < start + 4:
        return ""
    line = raw[start:].split(b"\r", 1)[0].split(b"\n", 1)[0]
    separator = line[3:4]
    if not separator:
        return ""
    parts = line.split(separator)
    # parts[0] is "MSH" and parts[1] is MSH-2, so MSH-n is parts[n - 1].
    return parts[17].decode("ascii", "replace").split("~")[0].split("^")[0].strip() if len(parts) > 17 else ""


def decode(raw: bytes | str) -> Decoded:
    """Decode by MSH-18 (Table 0211): ASCII, 8859/1, UNICODE UTF-8.

    With MSH-18 empty the bytes are read as UTF-8; bytes that are not valid
    UTF-8 are then read as ISO 8859-1 (every byte is valid there) and a warning
    says so, because an undeclared legacy feed is almost always Latin-1.
    When MSH-18 declares a character set and the bytes are not valid in it, the
    sender contradicts itself: guessing would store mojibake, so that is an error
    (the message is answered AE and kept, raw bytes and all, as a dead letter).
    A UTF-8 byte-order mark is removed. NUL characters are replaced (``_without_nul``).
    """
    if isinstance(raw, str):
        return _without_nul(Decoded(raw.removeprefix(_BOM), "str"))
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    declared = _msh18(raw)
    codec = _CHARSETS.get(declared.upper())
    issues: list[Hl7Error] = []
    if codec is None:
        issues.append(
            Hl7Error(
                ErrorCode.TABLE_VALUE_NOT_FOUND,
                "MSH",
                1,
                18,
                f"unsupported character set {declared[:20]!r}; read as UTF-8",
                Severity.WARNING,
            )
        )
        codec = "utf-8"
    try:
        return _without_nul(Decoded(raw.decode(codec), codec, issues))
    except UnicodeDecodeError:
        issues.append(
            Hl7Error(
                ErrorCode.DATA_TYPE_ERROR,
                "MSH",
                1,
                18,
                f"bytes are not valid {declared}; nothing applied"
                if declared
                else "bytes are not valid UTF-8; read as ISO 8859-1",
                Severity.ERROR if declared else Severity.WARNING,
            )
        )
        return _without_nul(Decoded(raw.decode("latin-1"), "latin-1", issues))


NUL_REPLACEMENT = "\ufffd"


def _without_nul(decoded: Decoded) -> Decoded:
    """NUL (U+0000) replaced by U+FFFD, with an error naming where the first one was.

    No HL7 v2 character set allows NUL in a message, so one is damage in transit or a broken
    sender, and a value holding it is not what the sender meant: the message is answered AE and
    kept (its raw bytes untouched) as a dead letter. The text is still read so that the ACK can
    mirror the header, and without the NUL, which PostgreSQL cannot store in a text column: the
    message log keeps the header fields and the ACK as text."""
    text = decoded.text
    at = text.find("\x00")
    if at < 0:
        return decoded
    lines = text[:at].replace("\r\n", "\r").replace("\n", "\r").split("\r")
    line = lines[-1]
    name = line[:3] if len(line) >= 3 else None
    sequence = sum(1 for earlier in lines[:-1] if earlier[:3] == name) + 1 if name else None
    separator = text[3:4] if text.startswith("MSH") else "|"
    field_no = line.count(separator) + (1 if name == "MSH" else 0) if name else None
    issue = Hl7Error(
        ErrorCode.DATA_TYPE_ERROR,
        name,
        sequence,
        field_no,
        "NUL character in the message (no HL7 v2 character set allows it); nothing applied",
        Severity.ERROR,
    )
    return Decoded(text.replace("\x00", NUL_REPLACEMENT), decoded.codec, [*decoded.issues, issue])


def normalize(text: str) -> str:
    """Strip a BOM and surrounding blank lines; CRLF and LF segment ends become CR."""
    text = text.removeprefix(_BOM).replace("\r\n", "\r").replace("\n", "\r")
    return "\r".join(line for line in text.split("\r") if line.strip())


def split_batch(text: str) -> list[str]:
    """Split an FHS/BHS batch (or a plain file of messages) into single messages.

    Batch header/trailer segments are dropped; anything before the first MSH
    that is not a batch segment is returned as its own chunk so that parsing it
    reports the problem instead of silently losing it.
    """
    messages: list[list[str]] = []
    for line in normalize(text).split("\r"):
        name = line[:3]
        if name in _BATCH_SEGMENTS:
            continue
        if name == "MSH" or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return ["\r".join(lines) for lines in messages]


@dataclass(frozen=True)
class Segment:
    """One segment: ``fields[n]`` is field n as raw ER7 (MSH-1 and MSH-2 included)."""

    name: str
    fields: tuple[str, ...]
    position: int
    """1-based sequence among the message's segments with this name (ERR-2.2)."""

    def raw(self, n: int) -> str:
        """Field n as raw text, empty when absent."""
        return self.fields[n] if 0 < n < len(self.fields) else ""


@dataclass
class Er7Message:
    """A parsed message: delimiters, segments in order, and structural issues."""

    encoding: Encoding
    segments: list[Segment]
    issues: list[Hl7Error] = field(default_factory=list)

    def first(self, name: str) -> Segment | None:
        """The first segment with this id."""
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> list[Segment]:
        """All segments with this id, in order."""
        return [s for s in self.segments if s.name == name]

    @property
    def msh(self) -> Segment:
        """The MSH segment (always present once parsed)."""
        return self.segments[0]


def _encoding(text: str) -> Encoding:
    if len(text) < 8 or not text.startswith("MSH"):
        raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH", 1, None, "message does not start with an MSH segment")
    sep = text[3]
    chars = text[4:].split(sep, 1)[0]
    seen = sep + chars[:4]
    if len(chars) < 4 or sep.isalnum() or any(c.isalnum() or c in "\r\n " for c in seen) or len(set(seen)) != 5:
        raise Hl7Error(ErrorCode.DATA_TYPE_ERROR, "MSH", 1, 2, "MSH-1/MSH-2 do not define valid delimiters")
    return Encoding(sep, chars[0], chars[1], chars[2], chars[3])


def _segments(parsed: hl7.Message) -> tuple[list[Segment], list[Hl7Error]]:
    counts: dict[str, int] = {}
    segments: list[Segment] = []
    issues: list[Hl7Error] = []
    for number, seg in enumerate(parsed, start=1):
        fields = tuple(str(f) for f in seg)
        name = fields[0] if fields else ""
        if len(name) != 3 or not name.isalnum() or not name[0].isalpha() or not name.isupper():
            issues.append(
                Hl7Error(
                    ErrorCode.SEGMENT_SEQUENCE_ERROR,
                    None,
                    None,
                    None,
                    f"line {number} is not a segment (bad segment id); ignored",
                )
            )
            continue
        counts[name] = counts.get(name, 0) + 1
        segments.append(Segment(name, fields, counts[name]))
    return segments, issues


def parse_message(text: str) -> Er7Message:
    """Parse one message with python-hl7 into a located view.

    Raises :class:`Hl7Error` (never anything else) when even MSH cannot be read.
    """
    text = normalize(text)
    enc = _encoding(text)
    try:
        parsed = hl7.parse(text)
        segments, issues = _segments(parsed)
    except Hl7Error:
        raise
    except Exception as exc:  # python-hl7 raises bare ValueError/KeyError/IndexError
        raise Hl7Error(
            ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH", 1, None, f"unparseable message ({type(exc).__name__})"
        ) from exc
    if not segments or segments[0].name != "MSH":
        raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH", 1, None, "message does not start with an MSH segment")
    for extra in segments[1:]:
        if extra.name == "MSH":
            issues.append(
                Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH", extra.position, None, "second MSH in one message")
            )
    return Er7Message(enc, segments, issues)
