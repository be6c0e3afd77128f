"""HL7 v2 escape sequences (HL7 v2.5.1 Chapter 2, section 2.7).

python-hl7's ``unescape`` drops sequences it cannot map; we keep unknown ones
literally (``\\Zabc\\`` stays as written) and report malformed ones, so nothing a
sender wrote is silently lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Encoding", "unescape"]


@dataclass(frozen=True)
class Encoding:
    """The message delimiters from MSH-1 and MSH-2 (HL7 v2.5.1 section 2.5.4)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def characters(self) -> str:
        """MSH-2 as written in an outbound message."""
        return self.component + self.repetition + self.escape + self.subcomponent


_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")


def _decode_hex(body: str) -> str | None:
    """``\\Xhh..\\``: hexadecimal bytes, decoded as UTF-8 (latin-1 when not valid UTF-8)."""
    if not _HEX.match(body):
        return None
    data = bytes.fromhex(body)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _expand(body: str, enc: Encoding) -> str | None:
    """The text for one escape body, ``None`` when it is not one we decode."""
    simple = {
        "F": enc.field,
        "S": enc.component,
        "T": enc.subcomponent,
        "R": enc.repetition,
        "E": enc.escape,
        ".br": "\n",
        "H": "",  # start highlighting: no rich text in the portal
        "N": "",  # normal text (end highlighting)
    }
    if body in simple:
        return simple[body]
    if body.startswith("X"):
        return _decode_hex(body[1:])
    if body.startswith(".sp"):
        count = body[3:].strip() or "1"
        return "\n" * int(count) if count.isdigit() else None
    return None


def unescape(text: str, enc: Encoding) -> tuple[str, list[str]]:
    """Decode the escape sequences in one leaf value (component or subcomponent).

    Returns the text and a list of problems: an unterminated escape or a bad
    ``\\X..\\`` body. Unknown escapes (``\\Zxxx\\``, ``\\Cxxyy\\``, formatting
    commands we do not render) and malformed ones are kept literally.
    """
    esc = enc.escape
    if not esc or esc not in text:
        return text, []
    out: list[str] = []
    problems: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != esc:
            out.append(ch)
            i += 1
            continue
        end = text.find(esc, i + 1)
        if end < 0:
            problems.append("unterminated escape sequence")
            out.append(text[i:])
            break
        body = text[i + 1 : end]
        decoded = _expand(body, enc)
        if decoded is None:
            if body.startswith("X") or not body:
                problems.append(f"malformed escape sequence {esc}{body[:12]}{esc}")
            out.append(text[i : end + 1])
        else:
            out.append(decoded)
        i = end + 1
    return "".join(out), problems
