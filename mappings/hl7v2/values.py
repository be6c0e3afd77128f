"""OBX-5 observation values by OBX-2 value type (HL7 Table 0125; v2.5.1 section 7.4.2.5).

Each value type yields a display string (``LabResult.resultValue``) and structured
data (``LabResult.resultData``). Repeated OBX-5 values: TX/FT/ST repetitions are
lines of one text (joined with newlines); any other repeated type keeps every
value in ``resultData["repetitions"]`` with no single ``value`` (a warning says so),
so a mapping never shows the first of several values as if it were the result.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from .er7 import Segment
from .fields import Reader
from .tables import ErrorCode, Severity, ValueType, coding_system_uri

__all__ = ["ObxValue", "read_value"]

_MIME = {
    "PDF": "application/pdf",
    "RTF": "application/rtf",
    "HTML": "text/html",
    "XML": "application/xml",
    "JPEG": "image/jpeg",
    "JPG": "image/jpeg",
    "PNG": "image/png",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
    "OCTET-STREAM": "application/octet-stream",
    "TEXT": "text/plain",
}
"""ED-3 data subtype (Table 0291, plus MIME-style names seen in feeds) -> MIME type."""

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_TEXT_TYPES = {ValueType.ST, ValueType.TX, ValueType.FT}


@dataclass
class ObxValue:
    """The mapped OBX-5: display string, structured data, attachments."""

    display: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    attachments: list[dict[str, str]] = field(default_factory=list)


def _number(text: str) -> float | None:
    return float(text) if _NUMBER.match(text) else None


def _fmt(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def _nm(r: Reader, obx: Segment, rep: str) -> tuple[str, dict[str, Any]]:
    text = r.comp(obx, 5, 1, rep)
    number = _number(text)
    if number is None:
        r.issue(ErrorCode.DATA_TYPE_ERROR, obx, 5, "OBX-2 is NM but OBX-5 is not a number")
        return text, {}
    return text, {"value": number}


def _sn(r: Reader, obx: Segment, rep: str) -> tuple[str, dict[str, Any]]:
    """SN (2A.71): comparator ^ num1 ^ separator/suffix ^ num2."""
    comparator, n1, sep, n2 = (r.comp(obx, 5, c, rep) for c in (1, 2, 3, 4))
    first, second = _number(n1), _number(n2)
    if comparator not in ("", ">", "<", ">=", "<=", "=", "<>") or first is None or (n2 and second is None):
        r.issue(ErrorCode.DATA_TYPE_ERROR, obx, 5, "OBX-5 is not a valid SN (comparator^num^separator^num)")
        return "".join((comparator, n1, sep, n2)), {}
    if sep in ("-",) and second is not None:
        return f"{_fmt(first)}-{_fmt(second)}", {"low": first, "high": second}
    if sep in (":", "/") and second is not None:
        return f"{_fmt(first)}{sep}{_fmt(second)}", {"numerator": first, "denominator": second, "separator": sep}
    data: dict[str, Any] = {"value": first}
    if comparator:
        data["comparator"] = comparator
    if sep == "+":
        data["suffix"] = "+"
    return f"{comparator}{_fmt(first)}{'+' if sep == '+' else ''}", data


def _coded(r: Reader, obx: Segment, rep: str) -> tuple[str, dict[str, Any]]:
    coded = r.coded(obx, 5, rep)
    data: dict[str, Any] = {"code": coded.code, "display": coded.display, "system": coded.system}
    data["systemUri"] = coding_system_uri(coded.system)
    if coded.original_text:
        data["text"] = coded.original_text
    return coded.original_text or coded.display or coded.code, data


def _when(r: Reader, obx: Segment, rep: str) -> tuple[str, dict[str, Any]]:
    dtm = r.dtm(obx, 5, r.comp(obx, 5, 1, rep))
    if dtm is None:
        return r.comp(obx, 5, 1, rep), {}
    return dtm.iso(), {"dateTime": dtm.iso(), "precision": dtm.precision}


def _rp(r: Reader, obx: Segment, rep: str) -> tuple[str, dict[str, Any]]:
    """RP (2A.65): pointer ^ application id ^ type of data ^ subtype."""
    pointer, app, kind, sub = (r.comp(obx, 5, c, rep) for c in (1, 2, 3, 4))
    return pointer, {"pointer": pointer, "application": app, "typeOfData": kind, "subtype": sub}


def _ed(r: Reader, obx: Segment, rep: str, title: str) -> dict[str, str] | None:
    """ED (2A.27): source ^ type of data (Table 0191) ^ subtype ^ encoding (Table 0299) ^ data."""
    subtype, encoding = r.comp(obx, 5, 3, rep), r.comp(obx, 5, 4, rep).upper()
    data = r.comp(obx, 5, 5, rep)
    if not data:
        r.issue(ErrorCode.REQUIRED_FIELD_MISSING, obx, 5, "ED value has no data (ED-5)", component=5)
        return None
    try:
        if encoding == "BASE64":
            payload = base64.b64decode(data, validate=True)
        elif encoding == "HEX":
            payload = bytes.fromhex(data)
        elif encoding in ("A", ""):
            payload = data.encode("utf-8")
        else:
            r.issue(ErrorCode.TABLE_VALUE_NOT_FOUND, obx, 5, "ED encoding not in HL7 Table 0299", component=4)
            return None
    except (binascii.Error, ValueError):
        r.issue(ErrorCode.DATA_TYPE_ERROR, obx, 5, f"ED data is not valid {encoding or 'text'}", component=5)
        return None
    mime = _MIME.get(subtype.upper())
    if mime is None:
        r.issue(ErrorCode.TABLE_VALUE_NOT_FOUND, obx, 5, "unknown ED data subtype", Severity.WARNING, component=3)
        mime = "application/octet-stream"
    return {"contentType": mime, "data": base64.b64encode(payload).decode("ascii"), "title": title}


_SIMPLE = {
    ValueType.NM: _nm,
    ValueType.SN: _sn,
    ValueType.CE: _coded,
    ValueType.CWE: _coded,
    ValueType.CNE: _coded,
    ValueType.DT: _when,
    ValueType.TS: _when,
    ValueType.DTM: _when,
    ValueType.RP: _rp,
}


def read_value(r: Reader, obx: Segment, value_type: ValueType, title: str) -> ObxValue:
    """Map OBX-5 (all repetitions) for a known value type."""
    reps = r.reps(obx, 5)
    if not reps:
        return ObxValue()
    if value_type in _TEXT_TYPES or value_type is ValueType.TM:
        # Text repetitions are successive lines; components of a text value are not meaningful.
        lines = [r.decode(rep, obx, 5) for rep in reps]
        text = "\n".join(lines)
        return ObxValue(text, {"text": text})
    if value_type is ValueType.ED:
        found = [a for a in (_ed(r, obx, rep, title) for rep in reps) if a]
        return ObxValue(title or None, {}, found)
    pairs = [_SIMPLE[value_type](r, obx, rep) for rep in reps]
    if len(pairs) == 1:
        return ObxValue(pairs[0][0], pairs[0][1])
    r.issue(
        ErrorCode.DATA_TYPE_ERROR,
        obx,
        5,
        f"OBX-5 repeats ({len(pairs)} values); kept as repetitions",
        Severity.WARNING,
    )
    return ObxValue("; ".join(p[0] for p in pairs), {"repetitions": [p[1] for p in pairs]})
