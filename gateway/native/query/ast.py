"""Typed nodes of a Parse ``where`` query.

The tree is pure data: ``sql.compile_where`` turns it into a SQL predicate and
``evaluate.matches`` runs it against an in-memory record (LiveQuery), so both doors
agree on one reading of the query. Values are already decoded from Parse JSON:
dates are aware UTC datetimes, pointers are bare objectIds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum

from gateway.store.classes import FieldSpec, FieldType

Scalar = str | int | float | bool | datetime | None
"""A decoded Parse value that a predicate compares with."""


class CmpOp(StrEnum):
    EQ = "$eq"
    NE = "$ne"
    LT = "$lt"
    LTE = "$lte"
    GT = "$gt"
    GTE = "$gte"


class FieldKind(Enum):
    """How a field is stored, which decides how every operator reads it."""

    SCALAR = "scalar"
    """One SQL column: String, Number, Boolean, Date, Pointer (an objectId)."""
    JSON_PATH = "json_path"
    """A value inside an Object column reached by dot notation (``contact.email``)."""
    JSON_ARRAY = "json_array"
    """A JSON array column (``attachments``)."""
    JOIN_ARRAY = "join_array"
    """Pointers kept in a join table: ``careTeam`` and Parse Relations."""
    OBJECT = "object"
    """A whole Object column; only null/``$exists`` tests apply."""


@dataclass(frozen=True, slots=True)
class FieldRef:
    spec: FieldSpec
    path: tuple[str, ...] = ()
    """JSON sub-path for dot notation into an Object field."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dotted(self) -> str:
        return ".".join((self.spec.name, *self.path))

    @property
    def kind(self) -> FieldKind:
        if self.path:
            return FieldKind.JSON_PATH
        if self.spec.join is not None:
            return FieldKind.JOIN_ARRAY
        if self.spec.type is FieldType.ARRAY:
            return FieldKind.JSON_ARRAY
        if self.spec.type is FieldType.OBJECT:
            return FieldKind.OBJECT
        return FieldKind.SCALAR


@dataclass(frozen=True, slots=True)
class Const:
    """A predicate known at parse time (unknown fields, pointers to another class)."""

    value: bool


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Nor:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    """``$eq``..``$gte``. On arrays EQ/NE mean "contains"/"does not contain" (Mongo).

    ``value`` is None only with EQ (null or missing) and NE (present and not null).
    """

    field: FieldRef
    op: CmpOp
    value: Scalar


@dataclass(frozen=True, slots=True)
class In:
    """``$in``; a None among the values also matches null/missing; on arrays: contains any."""

    field: FieldRef
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class NotIn:
    """``$nin``: the exact negation of ``In`` (so it matches null fields, as Mongo does)."""

    field: FieldRef
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Exists:
    field: FieldRef
    exists: bool


@dataclass(frozen=True, slots=True)
class All:
    """``$all``: the array contains every value; an empty list matches nothing (Mongo)."""

    field: FieldRef
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class ContainedBy:
    """``$containedBy``: every element is in ``values``; a null array never matches."""

    field: FieldRef
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class ArrayEquals:
    """Equality with a whole array value: same elements in the same order."""

    field: FieldRef
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Regex:
    """``$regex`` after validation; ``pattern`` is RE2 syntax, ``flags`` a subset of ``ims``
    (``x`` has already been applied by stripping whitespace and comments)."""

    field: FieldRef
    pattern: str
    flags: str = ""


@dataclass(frozen=True, slots=True)
class InQuery:
    """``$inQuery``: the pointer (or pointer array) names an object matched by ``where``."""

    field: FieldRef
    class_name: str
    where: Node


@dataclass(frozen=True, slots=True)
class NotInQuery:
    field: FieldRef
    class_name: str
    where: Node


@dataclass(frozen=True, slots=True)
class Select:
    """``$select``: the field equals ``key`` of some ``class_name`` object matched by ``where``."""

    field: FieldRef
    class_name: str
    where: Node
    key: FieldSpec


@dataclass(frozen=True, slots=True)
class DontSelect:
    field: FieldRef
    class_name: str
    where: Node
    key: FieldSpec


@dataclass(frozen=True, slots=True)
class RelatedTo:
    """``$relatedTo``: rows named by relation ``key`` of object ``object_id`` of ``owner``."""

    owner: str
    object_id: str
    key: FieldSpec


Node = (
    Const
    | And
    | Or
    | Nor
    | Compare
    | In
    | NotIn
    | Exists
    | All
    | ContainedBy
    | ArrayEquals
    | Regex
    | InQuery
    | NotInQuery
    | Select
    | DontSelect
    | RelatedTo
)

SubqueryNode = InQuery | NotInQuery | Select | DontSelect | RelatedTo

TRUE = Const(True)
FALSE = Const(False)


def and_(children: list[Node]) -> Node:
    """Conjunction with constant folding, so unknown fields leave no SQL behind."""
    kept: list[Node] = []
    for child in children:
        if isinstance(child, Const):
            if not child.value:
                return FALSE
            continue
        kept.append(child)
    if not kept:
        return TRUE
    return kept[0] if len(kept) == 1 else And(tuple(kept))
