"""Search parameters (FHIR R4 §3.1.1.4 "Search"): each type compiles one value to a SQL predicate.

A parameter repeated in the query is ANDed; comma-separated values inside one
occurrence are ORed (FHIR R4 §3.1.1.4.1). Every parameter knows its FHIR ``type`` so the
CapabilityStatement can be generated from the same objects that run the search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Column, ColumnElement, and_, false, func, not_, or_, true

from gateway.fhir.dates import parse_date
from gateway.fhir.outcome import bad_request
from gateway.store.classes import ClassSpec


@dataclass(frozen=True, slots=True)
class SearchContext:
    """Deployment values a parameter may need (identifier systems, our own base URL)."""

    base_url: str
    mrn_system: str
    system_base: str


class SearchParam(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str:
        """FHIR ``SearchParamType``: token, string, date, reference."""
        ...

    @property
    def documentation(self) -> str: ...
    @property
    def modifiers(self) -> frozenset[str]: ...

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]: ...


def _col(spec: ClassSpec, name: str) -> Column[Any]:
    return spec.table.c[name]


def split_token(value: str) -> tuple[str | None, str]:
    """``system|code`` -> (system, code); ``|code`` -> ("", code); ``code`` -> (None, code)."""
    if "|" in value:
        system, code = value.split("|", 1)
        return system, code
    return None, value


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class StringParam:
    """Case-insensitive "starts with" by default; ``:exact`` and ``:contains`` (FHIR R4 §3.1.1.5.4)."""

    name: str
    fields: tuple[str, ...]
    documentation: str
    type: str = "string"
    modifiers: frozenset[str] = frozenset({"exact", "contains"})

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        for name in self.fields:
            col = _col(spec, name)
            if modifier == "exact":
                parts.append(col == value)
            elif modifier == "contains":
                parts.append(func.lower(col).like(f"%{_escape_like(value.lower())}%", escape="\\"))
            else:
                parts.append(func.lower(col).like(f"{_escape_like(value.lower())}%", escape="\\"))
        return or_(*parts)


@dataclass(frozen=True, slots=True)
class TokenParam:
    """A code column; ``systems`` lists the accepted ``system`` URIs, ``codes`` maps FHIR -> native codes."""

    name: str
    column: str
    documentation: str
    systems: tuple[str, ...] = ()
    codes: Mapping[str, tuple[str, ...]] | None = None
    system_of: Callable[[SearchContext], str] | None = None
    type: str = "token"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        system, code = split_token(value)
        accepted = set(self.systems) | ({self.system_of(ctx)} if self.system_of else set())
        if system is not None and system != "" and system not in accepted:
            return false()
        if system == "" and accepted:
            return false()
        col = _col(spec, self.column)
        if code == "":
            return col.is_not(None)
        natives = (code,) if self.codes is None else self.codes.get(code, ())
        return col.in_(natives) if natives else false()


@dataclass(frozen=True, slots=True)
class CodingParam:
    """``Observation.code``: the native (codeSystem id, code) pair behind a FHIR Coding."""

    name: str
    documentation: str
    system_id: Callable[[str, str], str | None] = field(default=lambda base, uri: None)
    type: str = "token"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        system, code = split_token(value)
        cond: list[ColumnElement[bool]] = []
        if code:
            cond.append(_col(spec, "testCode") == code)
        if system == "":
            cond.append(_col(spec, "codeSystem").is_(None))
        elif system is not None:
            sid = self.system_id(ctx.system_base, system)
            if sid is None:
                return false()
            cond.append(_col(spec, "codeSystem") == sid)
        return and_(*cond) if cond else true()


@dataclass(frozen=True, slots=True)
class FixedTokenParam:
    """A token every row of the class carries (Observation.category = laboratory)."""

    name: str
    system: str
    code: str
    documentation: str
    type: str = "token"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        system, code = split_token(value)
        ok = code == self.code and system in (None, self.system)
        return true() if ok else false()


@dataclass(frozen=True, slots=True)
class IdParam:
    name: str = "_id"
    documentation: str = "Logical id of the resource"
    type: str = "token"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        return spec.pk == value


@dataclass(frozen=True, slots=True)
class DateParam:
    """A date/dateTime element; ``as_text`` for a ``YYYY-MM-DD`` string column (birthDate)."""

    name: str
    column: str
    documentation: str
    as_text: bool = False
    type: str = "date"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        rng = parse_date(value, self.name)
        col = _col(spec, self.column)
        low: Any = rng.low.date().isoformat() if self.as_text else rng.low
        high: Any = rng.high.date().isoformat() if self.as_text else rng.high
        inside = and_(col >= low, col < high)
        by_prefix: dict[str, ColumnElement[bool]] = {
            "eq": inside,
            "ap": inside,
            "ne": and_(col.is_not(None), not_(inside)),
            "lt": col < low,
            "eb": col < low,
            "le": col < high,
            "gt": col >= high,
            "sa": col >= high,
            "ge": col >= low,
        }
        return by_prefix[rng.prefix]


@dataclass(frozen=True, slots=True)
class ReferenceParam:
    """A pointer column: ``Type/id``, a bare id, or an absolute URL under our own FHIR base."""

    name: str
    column: str
    target: str
    documentation: str
    type: str = "reference"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        if modifier not in (None, self.target):
            return false()
        object_id = value
        own_base = ctx.base_url.rstrip("/") + "/fhir/"
        if value.startswith(("http://", "https://")):
            if not value.startswith(own_base):
                return false()
            value = value[len(own_base) :]
        if "/" in value:
            kind, _, object_id = value.partition("/")
            if kind != self.target or not object_id or "/" in object_id:
                return false()
        if not object_id:
            raise bad_request(f"Empty reference in {self.name}", self.name)
        return _col(spec, self.column) == object_id


@dataclass(frozen=True, slots=True)
class BooleanParam:
    """A token over a boolean column (``Patient.active``): ``true`` or ``false``."""

    name: str
    column: str
    documentation: str
    type: str = "token"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        _, code = split_token(value)
        if code not in ("true", "false"):
            raise bad_request(f"{self.name} must be true or false", self.name)
        return _col(spec, self.column) == (code == "true")


def columns_of(param: SearchParam) -> tuple[str, ...]:
    """Native columns behind a parameter, for ``:missing``; empty when every row has the element."""
    if isinstance(param, StringParam):
        return param.fields
    if isinstance(param, CodingParam):
        return ("testCode",)
    if isinstance(param, TokenParam | DateParam | ReferenceParam | BooleanParam):
        return (param.column,)
    return ()


def missing_clause(spec: ClassSpec, param: SearchParam, value: str) -> ColumnElement[bool]:
    """``:missing=true|false`` (FHIR R4 §3.1.1.5.1)."""
    if value not in ("true", "false"):
        raise bad_request(f"{param.name}:missing must be true or false", f"{param.name}:missing")
    cols = [_col(spec, name) for name in columns_of(param)]
    if not cols:
        return false() if value == "true" else true()
    if value == "true":
        return and_(*(c.is_(None) for c in cols))
    return or_(*(c.is_not(None) for c in cols))
