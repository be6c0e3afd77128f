"""Search parameters (FHIR R4 §3.1.1.4 "Search"): each type compiles one value to a SQL predicate.

A parameter repeated in the query is ANDed; comma-separated values inside one
occurrence are ORed (FHIR R4 §3.1.1.4.1). Every parameter knows its FHIR ``type`` so the
CapabilityStatement can be generated from the same objects that run the search.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Column, ColumnElement, Float, and_, case, cast, exists, false, func, not_, or_, select, true

from gateway.fhir.dates import PREFIXES, parse_date
from gateway.fhir.outcome import bad_request
from gateway.store.classes import CLASSES, ClassSpec
from mappings.native_fhir import REGISTRY as MAPPINGS
from mappings.native_fhir._ucum import SYNONYMS as UCUM_SYNONYMS


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


class Via(StrEnum):
    """How a native row stores a FHIR reference."""

    POINTER = "pointer"
    """A column holding the target profile's ``objectId``."""
    USER = "user"
    """A column holding a ``_User`` id; the target is the profile whose ``user`` is that id."""
    JOIN = "join"
    """A join-table array field (``PatientProfile.careTeam``) of target ids."""


@dataclass(frozen=True, slots=True)
class RefPath:
    """One way a reference element reaches one target type (``Appointment.actor`` has two)."""

    target: str
    """FHIR resource type."""
    column: str
    """Native field on the source class."""
    via: Via = Via.POINTER

    def target_spec(self) -> ClassSpec:
        return CLASSES[MAPPINGS[self.target].native_class]

    def matching(self, spec: ClassSpec, target_ids: Any) -> ColumnElement[bool]:
        """Source rows whose reference lands on a target id in ``target_ids`` (a list or a sub-select of ids)."""
        if self.via is Via.JOIN:
            join = spec.fields[self.column].join
            assert join is not None
            return exists(select(join.owning).where(join.owning == spec.pk, join.related.in_(target_ids)))
        col = _col(spec, self.column)
        if self.via is Via.USER:
            target = self.target_spec()
            return col.in_(
                select(target.table.c.user).where(target.pk.in_(target_ids), target.table.c.user.is_not(None))
            )
        return col.in_(target_ids)

    def present(self, spec: ClassSpec) -> ColumnElement[bool]:
        """The reference is there (``:missing=false``)."""
        if self.via is Via.JOIN:
            join = spec.fields[self.column].join
            assert join is not None
            return exists(select(join.owning).where(join.owning == spec.pk))
        if self.via is Via.USER:
            return self.matching(spec, select(self.target_spec().pk))
        return _col(spec, self.column).is_not(None)


def parse_reference(value: str, ctx: SearchContext, expression: str) -> tuple[str | None, str] | None:
    """``Type/id``, a bare id, or an absolute URL under our FHIR base -> (type or None, id);
    ``None`` for a URL on another server (it can match nothing here)."""
    own_base = ctx.base_url.rstrip("/") + "/fhir/"
    if value.startswith(("http://", "https://")):
        if not value.startswith(own_base):
            return None
        value = value[len(own_base) :]
    kind: str | None = None
    object_id = value
    if "/" in value:
        kind, _, object_id = value.partition("/")
        if not kind or "/" in object_id:
            return None
    if not object_id:
        raise bad_request(f"Empty reference in {expression}", expression)
    return kind, object_id


@dataclass(frozen=True, slots=True)
class ReferenceParam:
    """A reference element: ``Type/id``, a bare id, or an absolute URL under our own FHIR base.

    ``paths`` says where each target type lives in the native row; ``_include``,
    ``_revinclude`` and chained parameters follow the same paths, so the three can never
    disagree about what a reference points at.
    """

    name: str
    paths: tuple[RefPath, ...]
    documentation: str
    type: str = "reference"

    @property
    def modifiers(self) -> frozenset[str]:
        return frozenset(p.target for p in self.paths)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.target for p in self.paths))

    def paths_to(self, target: str | None) -> tuple[RefPath, ...]:
        return tuple(p for p in self.paths if target is None or p.target == target)

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        parsed = parse_reference(value, ctx, self.name)
        if parsed is None:
            return false()
        kind, object_id = parsed
        if kind is not None and modifier is not None and kind != modifier:
            return false()
        paths = self.paths_to(kind or modifier)
        if not paths:
            return false()
        return or_(*(p.matching(spec, [object_id]) for p in paths))

    def chain(self, spec: ClassSpec, target: str, target_ids: Any) -> ColumnElement[bool]:
        """``param[:Type].name=value``: rows whose reference lands on a target row ``target_ids`` selects."""
        return or_(*(p.matching(spec, target_ids) for p in self.paths_to(target)))


def reference(name: str, target: str, column: str, documentation: str, via: Via = Via.POINTER) -> ReferenceParam:
    return ReferenceParam(name, (RefPath(target, column, via),), documentation)


_NUMBER = re.compile(r"^[-+]?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})([eE][-+]?\d{1,3})?$")


def _number_range(text: str, expression: str) -> tuple[Decimal, Decimal, Decimal]:
    """(value, low, high): the interval the value's significant digits imply (FHIR R4 §3.1.1.4.3)."""
    if not _NUMBER.match(text):
        raise bad_request(f"Invalid number {text!r}", expression)
    number = Decimal(text)
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    if not all(math.isfinite(float(v)) for v in (number - half, number + half)):
        raise bad_request(f"Number out of range {text!r}", expression)
    return number, number - half, number + half


NUMERIC_TEXT = r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*$"
"""A plain decimal in a text column (both SQLite's ``regexp`` and PostgreSQL's ``~`` accept it)."""


@dataclass(frozen=True, slots=True)
class QuantityParam:
    """``Observation.valueQuantity`` over numeric (NM) lab results: ``[prefix]number[|system|code]``.

    The number is read from ``resultValue`` only when it is a plain decimal (guarded by a
    regex inside ``CASE`` so no database ever casts text that is not a number). Units match
    the stored ``units`` exactly or through their UCUM code.
    """

    name: str
    value_column: str
    type_column: str
    units_column: str
    numeric_types: tuple[str, ...]
    units_system: str
    documentation: str
    type: str = "quantity"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        prefix = value[:2] if value[:2] in PREFIXES else "eq"
        body = value[2:] if value[:2] in PREFIXES else value
        number_text, system, code = body, None, None
        if "|" in body:
            parts = body.split("|")
            if len(parts) != 3:
                raise bad_request(f"{self.name} must be [prefix]number[|system|code]", self.name)
            number_text, system, code = parts
        number, low, high = _number_range(number_text, self.name)
        text = _col(spec, self.value_column)
        numeric = and_(_col(spec, self.type_column).in_(self.numeric_types), text.regexp_match(NUMERIC_TEXT))
        num = case((numeric, cast(func.trim(text), Float)), else_=None)
        lo, hi, exact = float(low), float(high), float(number)
        slack = abs(exact) * 0.1
        by_prefix: dict[str, ColumnElement[bool]] = {
            "eq": and_(num >= lo, num < hi),
            "ne": or_(num < lo, num >= hi),
            "lt": num < exact,
            "le": num <= exact,
            "gt": num > exact,
            "ge": num >= exact,
            "sa": num > exact,
            "eb": num < exact,
            "ap": and_(num >= exact - slack, num <= exact + slack),
        }
        cond = by_prefix[prefix]
        if code:
            if system and system != self.units_system:
                return false()
            spellings = sorted({code, *(text for text, ucum in UCUM_SYNONYMS.items() if ucum == code)})
            cond = and_(cond, _col(spec, self.units_column).in_(spellings))
        elif system:
            return false()
        return and_(numeric, cond)


@dataclass(frozen=True, slots=True)
class PeriodParam:
    """A date parameter over a Period (``CarePlan.period``: start/end columns, either may be open).

    FHIR R4 §3.1.1.4.2 compares ranges: ``eq`` the search range contains the period, ``gt``/``ge``
    the period reaches past/into it, ``lt``/``le`` it starts before/within it, ``sa``/``eb`` it lies
    wholly after/before, ``ne`` not ``eq``, ``ap`` it overlaps the widened range.
    """

    name: str
    start: str
    end: str
    documentation: str
    type: str = "date"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        rng = parse_date(value, self.name)
        start, end = _col(spec, self.start), _col(spec, self.end)
        some = or_(start.is_not(None), end.is_not(None))
        contained = and_(start.is_not(None), end.is_not(None), start >= rng.low, end < rng.high)
        by_prefix: dict[str, ColumnElement[bool]] = {
            "eq": contained,
            "ne": and_(some, not_(contained)),
            "gt": or_(end.is_(None), end >= rng.high),
            "ge": or_(end.is_(None), end >= rng.low),
            "lt": or_(start.is_(None), start < rng.low),
            "le": or_(start.is_(None), start < rng.high),
            "sa": and_(start.is_not(None), start >= rng.high),
            "eb": and_(end.is_not(None), end < rng.low),
            "ap": and_(or_(start.is_(None), start < rng.high), or_(end.is_(None), end >= rng.low)),
        }
        return and_(some, by_prefix[rng.prefix])


@dataclass(frozen=True, slots=True)
class CodeSetParam:
    """A token whose codes each stand for a set of native values (AuditEvent ``action``/``type``/``subtype``).

    ``codes`` maps (system, code) -> native values of ``column`` (``{base}`` in a system is
    our system base). ``fallback`` is the code every unlisted native value shows as (action
    ``E``); ``local_system`` is the system under which an unlisted native value is its own code.
    """

    name: str
    column: str
    codes: Mapping[tuple[str, str], tuple[str, ...]]
    documentation: str
    fallback: tuple[str, str] | None = None
    local_system: str | None = None
    type: str = "token"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        system, code = split_token(value)
        col = _col(spec, self.column)
        listed = sorted({v for values in self.codes.values() for v in values})

        def hit(sys_: str, code_: str) -> bool:
            return code_ == code and (system is None or system == sys_.replace("{base}", ctx.system_base))

        natives = sorted({v for (sys_, code_), values in self.codes.items() if hit(sys_, code_) for v in values})
        parts: list[ColumnElement[bool]] = [col.in_(natives)] if natives else []
        if self.fallback is not None and hit(*self.fallback):
            parts.append(col.not_in(listed))
        if self.local_system is not None and code and code not in listed and hit(self.local_system, code):
            parts.append(col == code)
        return or_(*parts) if parts else false()


@dataclass(frozen=True, slots=True)
class TypedIdParam:
    """A reference stored as a (type, id) column pair (``AuditEvent.entity``: ``entityType``/``entityId``),
    plus ``extra`` reference paths that show under the same element (the patient entity)."""

    name: str
    type_column: str
    id_column: str
    type_values: Mapping[str, tuple[str, ...]]
    """FHIR type -> the stored type names meaning it."""
    documentation: str
    extra: tuple[RefPath, ...] = ()
    type: str = "reference"
    modifiers: frozenset[str] = frozenset()

    def clause(self, spec: ClassSpec, value: str, modifier: str | None, ctx: SearchContext) -> ColumnElement[bool]:
        parsed = parse_reference(value, ctx, self.name)
        if parsed is None:
            return false()
        kind, object_id = parsed
        kinds = [kind] if kind is not None else list(self.type_values)
        stored = sorted({v for k in kinds for v in self.type_values.get(k, ())})
        parts: list[ColumnElement[bool]] = []
        if stored:
            parts.append(and_(_col(spec, self.type_column).in_(stored), _col(spec, self.id_column) == object_id))
        parts += [p.matching(spec, [object_id]) for p in self.extra if kind in (None, p.target)]
        return or_(*parts) if parts else false()


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
    if isinstance(param, TokenParam | DateParam | BooleanParam | CodeSetParam):
        return (param.column,)
    if isinstance(param, PeriodParam):
        return (param.start, param.end)
    if isinstance(param, QuantityParam):
        return (param.value_column,)
    if isinstance(param, TypedIdParam):
        return (param.id_column,)
    return ()


def missing_clause(spec: ClassSpec, param: SearchParam, value: str) -> ColumnElement[bool]:
    """``:missing=true|false`` (FHIR R4 §3.1.1.5.1)."""
    if value not in ("true", "false"):
        raise bad_request(f"{param.name}:missing must be true or false", f"{param.name}:missing")
    if isinstance(param, ReferenceParam):
        present = or_(*(p.present(spec) for p in param.paths))
        return not_(present) if value == "true" else present
    cols = [_col(spec, name) for name in columns_of(param)]
    if not cols:
        return false() if value == "true" else true()
    if value == "true":
        return and_(*(c.is_(None) for c in cols))
    return or_(*(c.is_not(None) for c in cols))
