"""The Parse view of the SQL schema: one ``ClassSpec`` per class, derived from ``models``.

Every door asks this registry what a field is (type, column, pointer target, join
table) instead of keeping its own list, so the schema has a single source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Boolean, Column, Float, Integer, Table
from sqlalchemy.sql.schema import ForeignKey

from gateway.store import models
from gateway.store.types import UTCDateTime


class FieldType(StrEnum):
    """Parse Server schema types (``/parse/schemas`` answers with these names)."""

    STRING = "String"
    NUMBER = "Number"
    BOOLEAN = "Boolean"
    DATE = "Date"
    OBJECT = "Object"
    ARRAY = "Array"
    POINTER = "Pointer"
    RELATION = "Relation"
    ACL = "ACL"


@dataclass(frozen=True, slots=True)
class JoinSpec:
    """A many-to-many field kept in a join table (``owningId`` -> ``relatedId``)."""

    table: Table
    owning: Column[str]
    related: Column[str]
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    column: Column[object] | None = None
    target: str | None = None
    """Class a Pointer/Relation (or a pointer Array) refers to."""
    join: JoinSpec | None = None
    required: bool = False
    format: str | None = None
    """Extra constraint on a String, e.g. ``date`` (YYYY-MM-DD)."""

    @property
    def is_pointer(self) -> bool:
        return self.type is FieldType.POINTER

    @property
    def is_join(self) -> bool:
        return self.join is not None


@dataclass(frozen=True, slots=True)
class ClassSpec:
    name: str
    table: Table
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    versioned: bool = False

    @property
    def pk(self) -> Column[str]:
        return self.table.c.objectId

    def field(self, name: str) -> FieldSpec | None:
        return self.fields.get(name)


COMMON_FIELDS = ("objectId", "createdAt", "updatedAt", "ACL")

_CLINICAL = ("PatientProfile", "ProviderProfile", "LabResult", "TreatmentPlan", "Message", "Appointment")


def _column_type(col: Column[object]) -> tuple[FieldType, str | None]:
    info_type = col.info.get("parse_type")
    if info_type:
        return FieldType(info_type), None
    pointer = col.info.get("pointer")
    if pointer:
        return FieldType.POINTER, str(pointer)
    fks: set[ForeignKey] = set(col.foreign_keys)
    if fks:
        return FieldType.POINTER, str(next(iter(fks)).column.table.name)
    if isinstance(col.type, UTCDateTime):
        return FieldType.DATE, None
    if isinstance(col.type, Boolean):
        return FieldType.BOOLEAN, None
    if isinstance(col.type, Integer | Float):
        return FieldType.NUMBER, None
    return FieldType.STRING, None


def _spec_for(model: type[models.Base], joins: dict[str, FieldSpec] | None = None) -> ClassSpec:
    table: Table = model.__table__  # type: ignore[assignment]
    fields: dict[str, FieldSpec] = {}
    for col in table.columns:
        if col.name.startswith("_") or col.name == "seq":
            continue
        ftype, target = _column_type(col)
        required = not col.nullable and col.default is None and col.name not in COMMON_FIELDS
        fields[str(col.name)] = FieldSpec(
            name=str(col.name),
            type=ftype,
            column=col,
            target=target,
            required=required,
            format=col.info.get("format"),
        )
    fields.update(joins or {})
    versioned = "version" in table.columns
    return ClassSpec(name=str(table.name), table=table, fields=fields, versioned=versioned)


def _join(model: type[models.Base], name: str, ftype: FieldType, target: str, *, ordered: bool = False) -> FieldSpec:
    table: Table = model.__table__  # type: ignore[assignment]
    return FieldSpec(
        name=name,
        type=ftype,
        target=target,
        join=JoinSpec(table=table, owning=table.c.owningId, related=table.c.relatedId, ordered=ordered),
    )


CLASSES: dict[str, ClassSpec] = {
    spec.name: spec
    for spec in (
        _spec_for(models.User),
        _spec_for(models.Session),
        _spec_for(
            models.Role,
            {
                "users": _join(models.RoleUser, "users", FieldType.RELATION, "_User"),
                "roles": _join(models.RoleRole, "roles", FieldType.RELATION, "_Role"),
            },
        ),
        _spec_for(
            models.PatientProfile,
            {"careTeam": _join(models.CareTeam, "careTeam", FieldType.ARRAY, "ProviderProfile", ordered=True)},
        ),
        _spec_for(models.ProviderProfile),
        _spec_for(models.LabResult),
        _spec_for(models.TreatmentPlan),
        _spec_for(models.Message),
        _spec_for(models.Appointment),
        _spec_for(models.AuditLog),
    )
}

CLINICAL_CLASSES = frozenset(_CLINICAL)
PATIENT_SCOPED = frozenset(name for name, spec in CLASSES.items() if name != "AuditLog" and "patient" in spec.fields)
"""Classes whose rows belong to one patient through a ``patient`` pointer."""


def get_class(name: str) -> ClassSpec | None:
    return CLASSES.get(name)
