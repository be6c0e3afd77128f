"""Field operations a write carries, independent of the door that received it.

Parse sends ``__op`` objects (Increment, Add, ...); FHIR sends whole values. Both end
up as these operations, applied to the current record by ``apply_ops``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.errors import Invalid, ParseCode
from gateway.store.classes import ClassSpec, FieldType


class OpKind(StrEnum):
    SET = "Set"
    DELETE = "Delete"
    INCREMENT = "Increment"
    ADD = "Add"
    ADD_UNIQUE = "AddUnique"
    REMOVE = "Remove"
    ADD_RELATION = "AddRelation"
    REMOVE_RELATION = "RemoveRelation"


@dataclass(frozen=True, slots=True)
class FieldOp:
    field: str
    kind: OpKind
    value: Any = None
    """SET: the new value; INCREMENT: the amount; array/relation ops: the list of items."""


@dataclass(slots=True)
class AppliedChanges:
    columns: dict[str, Any]
    joins: dict[str, list[str]]
    """Pointer-array fields (careTeam) as their complete new list of ids."""
    relation_add: dict[str, list[str]]
    relation_remove: dict[str, list[str]]
    op_results: dict[str, Any]
    """Values Parse echoes back after an update (the result of Increment/Add/...)."""


def _eq_key(item: Any) -> Any:
    if isinstance(item, dict):
        return tuple(sorted((k, _eq_key(v)) for k, v in item.items()))
    if isinstance(item, list):
        return tuple(_eq_key(v) for v in item)
    return item


def apply_ops(spec: ClassSpec, current: Mapping[str, Any] | None, ops: Sequence[FieldOp]) -> AppliedChanges:
    out = AppliedChanges(columns={}, joins={}, relation_add={}, relation_remove={}, op_results={})
    for op in ops:
        fspec = spec.fields[op.field]
        cur = None if current is None else current.get(op.field)
        if op.kind is OpKind.SET:
            value: Any = op.value
        elif op.kind is OpKind.DELETE:
            if fspec.required or (fspec.column is not None and not fspec.column.nullable):
                raise Invalid(f"{op.field} is required.", parse_code=ParseCode.VALIDATION_ERROR)
            value = [] if fspec.is_join else None
        elif op.kind is OpKind.INCREMENT:
            value = (cur or 0) + op.value
            out.op_results[op.field] = value
        elif op.kind in (OpKind.ADD, OpKind.ADD_UNIQUE, OpKind.REMOVE):
            items = list(cur or [])
            if op.kind is OpKind.ADD:
                items.extend(op.value)
            elif op.kind is OpKind.ADD_UNIQUE:
                seen = {_eq_key(i) for i in items}
                for item in op.value:
                    if _eq_key(item) not in seen:
                        items.append(item)
                        seen.add(_eq_key(item))
            else:
                drop = {_eq_key(i) for i in op.value}
                items = [i for i in items if _eq_key(i) not in drop]
            value = items
            out.op_results[op.field] = items
        elif op.kind is OpKind.ADD_RELATION:
            out.relation_add.setdefault(op.field, []).extend(op.value)
            continue
        else:
            out.relation_remove.setdefault(op.field, []).extend(op.value)
            continue
        if fspec.is_join and fspec.type is FieldType.ARRAY:
            out.joins[op.field] = list(value or [])
        else:
            out.columns[op.field] = value
    return out
