"""``$regex`` patterns: validated with RE2 (linear time, no ReDoS) and kept portable.

A pattern is accepted only in a subset that RE2, SQLite (through RE2) and
PostgreSQL's ARE engine read the same way: no backreferences or lookaround (RE2
rejects them), no named groups or inline flags (PostgreSQL has neither), escapes
limited to ``\\d\\s\\w`` (and upper case), ``\\b\\B\\A\\z``, ``\\n\\t\\r\\f\\v`` and escaped
punctuation, repetition counts up to 255 (PostgreSQL's ``RE_DUP_MAX``). Mongo's
``$options`` ``i m s`` map to RE2 inline flags; ``x`` is applied here by removing
whitespace and ``#`` comments, so neither engine needs it.
"""

from __future__ import annotations

from functools import lru_cache

import re2

from gateway.errors import Invalid, ParseCode

_OPTIONS = frozenset("imsx")
_CLASS_ESCAPES = frozenset("dDsSwW")
_CONTROL_ESCAPES = frozenset("ntrfv")
_MAX_REPEAT = 255


def _invalid(message: str) -> Invalid:
    return Invalid(message, parse_code=ParseCode.INVALID_QUERY)


def strip_extended(pattern: str) -> str:
    """Apply the ``x`` option: unescaped whitespace and ``#`` comments outside classes go."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("[ ]" if nxt == " " and not in_class else ch + nxt)
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
        elif ch == "#":
            while i < len(pattern) and pattern[i] != "\n":
                i += 1
        elif not ch.isspace():
            out.append(ch)
        i += 1
    return "".join(out)


def expand_quoted(pattern: str) -> str:
    """Turn PCRE's ``\\Q...\\E`` literal spans into escaped characters.

    The Parse SDKs build ``startsWith``/``endsWith``/``contains`` as ``^\\Q<text>\\E``;
    PostgreSQL's regex engine has no ``\\Q``, so the span is rewritten with every
    non-alphanumeric character backslash-escaped (literal in both RE2 and ARE).
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("\\Q", i):
            end = pattern.find("\\E", i + 2)
            literal = pattern[i + 2 : end if end >= 0 else len(pattern)]
            out.extend("\\" + c if c.isascii() and not c.isalnum() and not c.isspace() else c for c in literal)
            i = end + 2 if end >= 0 else len(pattern)
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def check_regex(pattern: object, options: object, max_length: int) -> tuple[str, str]:
    """Return ``(pattern, flags)`` ready for ``ast.Regex``, or raise 102."""
    if not isinstance(pattern, str):
        raise _invalid("bad $regex: the pattern must be a string")
    if options is None:
        options = ""
    if not isinstance(options, str) or not set(options) <= _OPTIONS:
        raise _invalid("bad $options: only i, m, s and x are supported")
    if len(pattern) > max_length:
        raise _invalid(f"$regex is longer than the limit of {max_length} characters")
    if "x" in options:
        pattern = strip_extended(pattern)
    pattern = expand_quoted(pattern)
    flags = "".join(f for f in "ims" if f in options)
    to_postgres(pattern, flags)  # raises on anything outside the portable subset
    try:
        compiled(re2_source(pattern, flags))
    except re2.error as exc:
        raise _invalid(f"bad $regex: {exc}") from exc
    return pattern, flags


def _repeat_end(pattern: str, start: int) -> int:
    """Index after a ``{n}``, ``{n,}`` or ``{n,m}`` quantifier starting at ``start``."""
    end = pattern.find("}", start)
    body = pattern[start + 1 : end] if end > 0 else ""
    parts = body.split(",")
    if not body or len(parts) > 2 or not parts[0].isdigit() or not all(p.isdigit() for p in parts[1:] if p):
        raise _invalid("bad $regex: a literal { must be escaped")
    if any(int(p) > _MAX_REPEAT for p in parts if p):
        raise _invalid(f"bad $regex: repetition counts above {_MAX_REPEAT} are not supported")
    return end + 1


_ASCII_CLASSES: dict[str, tuple[str, str | None]] = {
    "d": ("[0-9]", "0-9"),
    "w": ("[0-9A-Za-z_]", "0-9A-Za-z_"),
    "s": ("[\\t\\n\\f\\r ]", "\\t\\n\\f\\r "),
    "D": ("[^0-9]", None),
    "W": ("[^0-9A-Za-z_]", None),
    "S": ("[^\\t\\n\\f\\r ]", None),
}
"""The shorthands spelled out for PostgreSQL, (outside a bracket expression, inside one).

RE2 (SQLite's ``REGEXP`` and the evaluator) and Mongo's PCRE read ``\\d \\w \\s`` as ASCII;
PostgreSQL's follow the database's locale, so in a UTF-8 database ``\\w`` matched ``É``
and the two backends answered the same query differently. A negated shorthand inside a
bracket expression has no such spelling and stays as written."""


def to_postgres(pattern: str, flags: str) -> str:
    """The same pattern for PostgreSQL ``~`` (ARE), with the flags as an embedded option.

    Without ``s`` a ``.`` must not match a newline (Mongo/PCRE); ARE's ``.`` does, so it
    becomes ``[^\\n]``. ``m`` is ARE's ``w`` ("inverse partial newline-sensitive":
    ``^``/``$`` at line breaks while ``.`` keeps its meaning).
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not nxt:
                raise _invalid("bad $regex: trailing backslash")
            if nxt in _CLASS_ESCAPES:
                outside, inside = _ASCII_CLASSES[nxt]
                out.append((inside if in_class else outside) or ch + nxt)
            elif nxt in _CONTROL_ESCAPES or (not nxt.isalnum() and nxt.isascii()):
                out.append(ch + nxt)
            elif nxt in "bBAz" and not in_class:
                out.append({"b": r"\y", "B": r"\Y", "A": r"\A", "z": r"\Z"}[nxt])
            else:
                raise _invalid(f"bad $regex: the escape \\{nxt} is not supported")
            i += 2
            continue
        if in_class:
            if ch == "[" and pattern[i + 1 : i + 2] in (".", "="):
                raise _invalid("bad $regex: collating elements are not supported")
            if ch == "[" and pattern[i + 1 : i + 2] == ":":
                end = pattern.find(":]", i + 2)
                if end < 0:
                    raise _invalid("bad $regex: unterminated character class")
                out.append(pattern[i : end + 2])
                i = end + 2
                continue
            in_class = ch != "]"
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
            for lead in ("^", "]"):
                if pattern[i + 1 : i + 2] == lead:
                    out.append(lead)
                    i += 1
        elif ch == "(" and pattern[i + 1 : i + 2] == "?":
            if pattern[i + 2 : i + 3] != ":":
                raise _invalid("bad $regex: only (?:...) groups are supported")
            out.append("(?:")
            i += 3
            continue
        elif ch == "{":
            end = _repeat_end(pattern, i)
            out.append(pattern[i:end])
            i = end
            continue
        elif ch == "." and "s" not in flags:
            out.append(r"[^\n]")
        else:
            out.append(ch)
        i += 1
    if in_class:
        raise _invalid("bad $regex: unterminated character class")
    pg_flags = ("i" if "i" in flags else "") + ("w" if "m" in flags else "")
    return f"(?{pg_flags}){''.join(out)}" if pg_flags else "".join(out)


def re2_source(pattern: str, flags: str) -> str:
    return f"(?{flags}){pattern}" if flags else pattern


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a rejected pattern is a 102 answer, not a log line
    return options


_RE2_OPTIONS = _options()


@lru_cache(maxsize=512)
def compiled(source: str) -> re2._Regexp:
    return re2.compile(source, _RE2_OPTIONS)


def search(source: str, subject: str) -> bool:
    return compiled(source).search(subject) is not None


def _sqlite_regexp(source: object, subject: object) -> int | None:
    if not isinstance(source, str) or not isinstance(subject, str):
        return None
    return 1 if search(source, subject) else 0


def install_sqlite_functions(dbapi_connection: object) -> None:
    """Register ``regexp(pattern, subject)`` (SQLite's ``x REGEXP y``) backed by RE2.

    Call it from the engine's ``connect`` event; the SQL side only ever passes
    patterns that ``check_regex`` accepted.
    """
    dbapi_connection.create_function(  # type: ignore[attr-defined]
        "regexp", 2, _sqlite_regexp, deterministic=True
    )
