"""Original-mode ACK messages (HL7 v2.5.1 section 2.9.2, 2.14.8 MSA, 2.14.5 ERR), built purely.

The ACK uses the inbound delimiters and version (MSH-12), swaps sender and
receiver (MSH-3..6), sets MSH-9 ``ACK^<trigger>^ACK`` and MSA-2 to the inbound
MSH-10. Each error becomes an ERR: for v2.5+ ERR-2 (ERL location), ERR-3
(Table 0357), ERR-4 (Table 0516 severity), ERR-8 (user message); for 2.3/2.4
the older ERR-1 (ELD). Texts come from :class:`Hl7Error` messages, which never
quote patient data.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .drafts import MessageHeader
from .errors import Hl7Error
from .escape import Encoding
from .tables import AckCode

__all__ = ["build_ack", "build_ack_for_unparseable", "escape"]

_FALLBACK_VERSION = "2.5.1"
_MAX_TEXT = 200


def escape(text: str, enc: Encoding) -> str:
    """Escape delimiters in a value (section 2.7): ``\\E\\`` first, then F, S, R, T; line breaks as ``\\.br\\``."""
    e = enc.escape
    out = text.replace(e, f"{e}E{e}")
    for char, code in ((enc.field, "F"), (enc.component, "S"), (enc.repetition, "R"), (enc.subcomponent, "T")):
        out = out.replace(char, f"{e}{code}{e}")
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{e}.br{e}")


def _old_style(version: str) -> bool:
    return version.startswith(("2.3", "2.4")) or version in ("2.1", "2.2")


def _err(error: Hl7Error, enc: Encoding, version: str) -> str:
    f, c, s = enc.field, enc.component, enc.subcomponent
    text = escape(error.message[:_MAX_TEXT], enc)
    code = escape(error.code.text, enc)
    location = [
        error.segment or "",
        str(error.position or ""),
        str(error.field or ""),
        "",
        str(error.component or ""),
    ]
    if _old_style(version):
        # ERR-1 ELD: segment ^ sequence ^ field ^ code&text&HL70357
        eld = c.join([*location[:3], s.join([error.code.value, code, "HL70357"])])
        return f"ERR{f}{eld}"
    erl = c.join(location).rstrip(c) if error.segment else ""
    fields = ["ERR", "", erl, c.join([error.code.value, code, "HL70357"]), error.severity.value, "", "", "", text]
    return f.join(fields)


def _stamp(now: datetime, enc: Encoding) -> str:
    """MSH-7 as DTM with its offset, which must not contain a delimiter: a sender whose field
    separator is ``+`` (any printable character may be) would otherwise read the offset as a new
    field. The instant is then written in UTC with the sign that is free (HL7 DTM writes zero
    offset as ``+0000`` or ``-0000``), or without an offset when both signs are delimiters."""
    stamp = now.strftime("%Y%m%d%H%M%S%z")
    delimiters = enc.characters + enc.field
    if not any(sign in delimiters for sign in "+-"):
        return stamp
    utc = now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    free = next((sign for sign in "+-" if sign not in delimiters), None)
    return utc if free is None else f"{utc}{free}0000"


def _msh(
    enc: Encoding,
    routing: tuple[str, str, str, str],
    trigger: str,
    control_id: str,
    processing_id: str,
    version: str,
    now: datetime,
) -> str:
    send_app, send_fac, recv_app, recv_fac = routing
    stamp = _stamp(now, enc)
    msh_type = enc.component.join(["ACK", escape(trigger, enc), "ACK"])
    fields = [
        "MSH",
        enc.characters,
        recv_app,
        recv_fac,
        send_app,
        send_fac,
        stamp,
        "",
        msh_type,
        escape(control_id, enc),
        escape(processing_id, enc) or "P",
        escape(version, enc),
    ]
    return enc.field.join(fields)


def build_ack(
    header: MessageHeader,
    code: AckCode,
    errors: list[Hl7Error],
    *,
    ack_control_id: str,
    now: datetime,
) -> str:
    """The ACK for an inbound message, as ER7 with CR segment terminators."""
    enc = Encoding(header.field_separator, *header.encoding_characters[:4])
    version = header.version or _FALLBACK_VERSION
    segments = [
        _msh(enc, header.routing_raw, header.trigger_event, ack_control_id, header.processing_id, version, now),
        enc.field.join(["MSA", code.value, escape(header.control_id, enc)]),
        *(_err(e, enc, version) for e in errors),
    ]
    return "\r".join(segments) + "\r"


def _salvage(raw: str) -> tuple[Encoding, list[str]]:
    """Best-effort delimiters and MSH fields from text whose MSH could not be parsed."""
    start = raw.find("MSH")
    if start < 0 or len(raw) < start + 8:
        return Encoding(), []
    line = raw[start:].replace("\n", "\r").split("\r", 1)[0]
    if len(line) < 8:
        return Encoding(), []
    sep, chars = line[3], line[4:8]
    candidate = sep + chars
    if len(set(candidate)) != 5 or any(ch.isalnum() or ch.isspace() for ch in candidate):
        return Encoding(), []
    enc = Encoding(sep, chars[0], chars[1], chars[2], chars[3])
    parts = line.split(sep)
    return enc, ["", sep, *parts[1:]]  # index n is MSH-n


def build_ack_for_unparseable(
    raw: str | bytes,
    error: Hl7Error,
    *,
    ack_control_id: str,
    now: datetime,
) -> str:
    """An AR for a message whose MSH cannot be read: mirrors whatever MSH fields survive."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    enc, msh = _salvage(text.removeprefix("\ufeff"))

    def field(n: int) -> str:
        value = msh[n] if n < len(msh) else ""
        # a salvaged field may hold anything: keep it only if it is free of our own delimiters
        # (and of NUL, which no HL7 v2 text allows and PostgreSQL cannot store with the ACK)
        return value if "\r" not in value and "\n" not in value and "\x00" not in value else ""

    version = field(12).split(enc.component)[0] or _FALLBACK_VERSION
    trigger = field(9).split(enc.component)[1] if enc.component in field(9) else ""
    routing = (field(3), field(4), field(5), field(6))
    segments = [
        _msh(enc, routing, trigger, ack_control_id, field(11).split(enc.component)[0], version, now),
        enc.field.join(["MSA", AckCode.AR.value, field(10)]),
        _err(error, enc, version),
    ]
    return "\r".join(segments) + "\r"
