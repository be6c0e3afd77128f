"""Parse ``where`` JSON -> ``ast.Node`` (pure: no SQL, no I/O).

Semantics follow Parse Server over MongoDB: a field missing from the schema is a
field that is always undefined (``$exists: false`` and ``$ne`` hold, equality does
not), never an error and never a SQL column; ``$ne``/``$nin`` match null fields;
comparisons never match null; equality/``$in`` on an array mean "contains".
Error codes are Parse's: 102 for malformed queries and unsupported operators, 105
for bad key names, 111 for a value of the wrong type, 119 for protected fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.errors import Forbidden
from gateway.native.query.ast import (
    FALSE,
    TRUE,
    All,
    ArrayEquals,
    CmpOp,
    Compare,
    Const,
    ContainedBy,
    DontSelect,
    Exists,
    FieldKind,
    FieldRef,
    In,
    InQuery,
    Node,
    Nor,
    NotIn,
    NotInQuery,
    Or,
    Regex,
    RelatedTo,
    Scalar,
    Select,
    and_,
)
from gateway.native.query.regex import check_regex
from gateway.native.query.values import NEVER, check_key, decode, decode_any, invalid_query
from gateway.store.classes import CLASSES, ClassSpec, FieldSpec, FieldType

ProtectedFor = Callable[[ClassSpec], frozenset[str]]

_UNSUPPORTED = frozenset(
    {
        "$text",
        "$near",
        "$nearSphere",
        "$maxDistance",
        "$maxDistanceInRadians",
        "$maxDistanceInMiles",
        "$maxDistanceInKilometers",
        "$within",
        "$geoWithin",
        "$geoIntersects",
        "$box",
        "$polygon",
        "$centerSphere",
        "$point",
        "$elemMatch",
        "$not",
        "$size",
        "$type",
        "$mod",
        "$where",
    }
)
_RANGE = {"$lt": CmpOp.LT, "$lte": CmpOp.LTE, "$gt": CmpOp.GT, "$gte": CmpOp.GTE}
_ARRAY_KINDS = (FieldKind.JSON_ARRAY, FieldKind.JOIN_ARRAY)


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Hard limits a client cannot exceed (DESIGN.md "Limits"); crossing one is a 102."""

    max_depth: int = 8
    """Nesting of ``$or``/``$and``/``$nor`` and sub-queries; the top document is level 1."""
    regex_max_length: int = 256
    in_max_items: int = 10_000
    """Longest list for ``$in``, ``$nin``, ``$all`` and ``$containedBy``."""


def parse_where(
    spec: ClassSpec,
    where: object,
    limits: QueryLimits,
    *,
    protected: frozenset[str] = frozenset(),
    protected_for: ProtectedFor | None = None,
) -> Node:
    """``protected`` fields of ``spec`` (and ``protected_for(other)`` inside sub-queries)
    may not be queried at all: using one raises ``Forbidden`` (119)."""
    if where is None:
        return TRUE
    return _Parser(limits, protected_for).document(spec, where, 1, protected)


def _or(children: list[Node]) -> Node:
    kept = [c for c in children if c != FALSE]
    if any(c == TRUE for c in kept):
        return TRUE
    if not kept:
        return FALSE
    return kept[0] if len(kept) == 1 else Or(tuple(kept))


def _not(node: Node) -> Node:
    return Const(not node.value) if isinstance(node, Const) else Nor((node,))


def _category(spec: FieldSpec) -> str:
    return "String" if spec.type in (FieldType.STRING, FieldType.POINTER) else spec.type.value


class _Parser:
    def __init__(self, limits: QueryLimits, protected_for: ProtectedFor | None) -> None:
        self.limits = limits
        self.protected_for = protected_for

    def _protected(self, spec: ClassSpec) -> frozenset[str]:
        return self.protected_for(spec) if self.protected_for else frozenset()

    # ------------------------------------------------------------ documents

    def document(self, spec: ClassSpec, doc: object, depth: int, protected: frozenset[str]) -> Node:
        if depth > self.limits.max_depth:
            raise invalid_query(f"where is nested deeper than the limit of {self.limits.max_depth} levels")
        if not isinstance(doc, Mapping):
            raise invalid_query("where must be a JSON object")
        parts: list[Node] = []
        for key, value in doc.items():
            if not isinstance(key, str):
                raise invalid_query("where keys must be strings")
            if key in ("$or", "$and", "$nor"):
                parts.append(self.logical(spec, key, value, depth, protected))
            elif key == "$relatedTo":
                parts.append(self.related_to(spec, value))
            elif key.startswith("$"):
                raise invalid_query(f"Invalid key {key} for find")
            else:
                parts.append(self.field(spec, key, value, depth, protected))
        return and_(parts)

    def logical(self, spec: ClassSpec, op: str, value: object, depth: int, protected: frozenset[str]) -> Node:
        if not isinstance(value, list) or not value:
            raise invalid_query(f"Bad {op} format - use an array of at least 1 value.")
        children = [self.document(spec, item, depth + 1, protected) for item in value]
        if op == "$and":
            return and_(children)
        return _or(children) if op == "$or" else _not(_or(children))

    def field(self, spec: ClassSpec, key: str, value: object, depth: int, protected: frozenset[str]) -> Node:
        name, *path = check_key(key)
        if name in protected:
            raise Forbidden(f"This user is not allowed to query {name} on class {spec.name}")
        fspec = spec.fields.get(name)
        if fspec is not None and fspec.type is FieldType.ACL:
            raise invalid_query("Cannot query on ACL.")
        ref = None
        if fspec is not None and (not path or fspec.type is FieldType.OBJECT):
            ref = FieldRef(fspec, tuple(path))
        return self.constraint(ref, value, depth)

    # ------------------------------------------------------------ one field

    def constraint(self, ref: FieldRef | None, value: object, depth: int) -> Node:
        if not (isinstance(value, Mapping) and any(str(k).startswith("$") for k in value)):
            return self.equal(ref, value)
        if not all(str(k).startswith("$") for k in value):
            raise invalid_query("A constraint cannot mix $operators and plain keys")
        parts: list[Node] = []
        for op, arg in value.items():
            if op == "$options":
                if "$regex" not in value:
                    raise invalid_query("Invalid key $options for find: $options needs $regex")
                continue
            parts.append(self.operator(ref, op, arg, value, depth))
        return and_(parts)

    def operator(self, ref: FieldRef | None, op: str, arg: object, whole: Mapping[str, object], depth: int) -> Node:
        if op == "$eq":
            return self.equal(ref, arg)
        if op == "$ne":
            eq = self.equal(ref, arg)
            return Compare(eq.field, CmpOp.NE, eq.value) if isinstance(eq, Compare) else _not(eq)
        if op in _RANGE:
            return self.compare(ref, _RANGE[op], arg)
        if op in ("$in", "$nin"):
            node = self.in_(ref, self.items(op, arg))
            if op == "$in":
                return node
            return NotIn(node.field, node.values) if isinstance(node, In) else _not(node)
        if op == "$exists":
            if not isinstance(arg, bool):
                raise invalid_query("bad $exists: use true or false")
            return Exists(ref, arg) if ref is not None else Const(not arg)
        if op in ("$all", "$containedBy"):
            return self.array_op(ref, op, self.items(op, arg))
        if op == "$regex":
            pattern, flags = check_regex(arg, whole.get("$options"), self.limits.regex_max_length)
            if ref is None:
                return FALSE
            if not (
                ref.kind is FieldKind.JSON_PATH or (ref.kind is FieldKind.SCALAR and ref.spec.type is FieldType.STRING)
            ):
                raise invalid_query(f"$regex needs a String field, not {ref.dotted}")
            return Regex(ref, pattern, flags)
        if op in ("$inQuery", "$notInQuery"):
            return self.in_query(ref, op, arg, depth)
        if op in ("$select", "$dontSelect"):
            return self.select(ref, op, arg, depth)
        if op in _UNSUPPORTED:
            raise invalid_query(f"{op} is not supported")
        raise invalid_query(f"Invalid key {op} for find")

    def items(self, op: str, arg: object) -> list[object]:
        if not isinstance(arg, list):
            raise invalid_query(f"bad {op} value: use an array")
        if len(arg) > self.limits.in_max_items:
            raise invalid_query(f"{op} has more than the limit of {self.limits.in_max_items} values")
        return arg

    def equal(self, ref: FieldRef | None, raw: object) -> Node:
        if raw is None:
            return Compare(ref, CmpOp.EQ, None) if ref is not None else TRUE
        if isinstance(raw, list):
            if ref is None:
                return FALSE
            if ref.kind is not FieldKind.JSON_ARRAY:
                raise invalid_query(f"{ref.dotted} cannot be compared with a whole array")
            values = [decode(ref, v) for v in raw]
            return ArrayEquals(ref, tuple(values))  # type: ignore[arg-type]
        value = decode(ref, raw) if ref is not None else decode_any(raw)
        if ref is None or value is NEVER:
            return FALSE
        return Compare(ref, CmpOp.EQ, value)  # type: ignore[arg-type]

    def compare(self, ref: FieldRef | None, op: CmpOp, raw: object) -> Node:
        if raw is None or isinstance(raw, list | bool):
            raise invalid_query(f"bad {op.value} value")
        if ref is None:
            decode_any(raw)
            return FALSE
        ordered = ref.kind is FieldKind.JSON_PATH or (
            ref.kind is FieldKind.SCALAR and ref.spec.type in (FieldType.STRING, FieldType.NUMBER, FieldType.DATE)
        )
        if not ordered:
            raise invalid_query(f"{op.value} is not supported on {ref.dotted}")
        return Compare(ref, op, decode(ref, raw))  # type: ignore[arg-type]

    def in_(self, ref: FieldRef | None, raw: list[object]) -> Node:
        if ref is None:
            for v in raw:
                if v is not None:
                    decode_any(v)
            return Const(None in raw)
        if ref.kind is FieldKind.OBJECT and any(v is not None for v in raw):
            raise invalid_query(f"Compare values inside {ref.name} with dot notation")
        values: list[Scalar] = []
        seen: set[tuple[type, object]] = set()
        for v in raw:
            if isinstance(v, list):
                raise invalid_query("Arrays inside $in are not supported")
            decoded = None if v is None else decode(ref, v)
            if decoded is not NEVER and (type(decoded), decoded) not in seen:
                seen.add((type(decoded), decoded))
                values.append(decoded)  # type: ignore[arg-type]
        return In(ref, tuple(values)) if values else FALSE

    def array_op(self, ref: FieldRef | None, op: str, raw: list[object]) -> Node:
        if ref is None:
            return FALSE
        if ref.kind not in _ARRAY_KINDS:
            raise invalid_query(f"{op} needs an Array field, not {ref.dotted}")
        if any(v is None or isinstance(v, list) for v in raw):
            raise invalid_query(f"bad {op} value: use an array of values")
        decoded = [decode(ref, v) for v in raw]
        if op == "$all":
            if not decoded or NEVER in decoded:
                return FALSE
            return All(ref, tuple(decoded))  # type: ignore[arg-type]
        return ContainedBy(ref, tuple(v for v in decoded if v is not NEVER))  # type: ignore[misc]

    # ------------------------------------------------------------ sub-queries

    def _subquery(self, arg: object, op: str, depth: int) -> tuple[ClassSpec | None, Node]:
        if not isinstance(arg, Mapping) or not isinstance(arg.get("className"), str):
            raise invalid_query(f"improper usage of {op}")
        where = arg.get("where", {})
        sub = CLASSES.get(arg["className"])
        if sub is None:
            return None, FALSE
        return sub, self.document(sub, where if where is not None else {}, depth + 1, self._protected(sub))

    def in_query(self, ref: FieldRef | None, op: str, arg: object, depth: int) -> Node:
        sub, where = self._subquery(arg, op, depth)
        negated = op == "$notInQuery"
        if ref is not None and not (ref.kind in (FieldKind.SCALAR, FieldKind.JOIN_ARRAY) and ref.spec.target):
            raise invalid_query(f"improper usage of {op}: {ref.dotted} is not a Pointer")
        if ref is None or sub is None or ref.spec.target != sub.name or where == FALSE:
            return Const(negated)
        node = InQuery(ref, sub.name, where)
        return NotInQuery(ref, sub.name, where) if negated else node

    def select(self, ref: FieldRef | None, op: str, arg: object, depth: int) -> Node:
        if not isinstance(arg, Mapping) or not isinstance(arg.get("key"), str) or "query" not in arg:
            raise invalid_query(f"improper usage of {op}")
        sub, where = self._subquery(arg["query"], op, depth)
        negated = op == "$dontSelect"
        if ref is not None and ref.kind is not FieldKind.SCALAR:
            raise invalid_query(f"improper usage of {op}: {ref.dotted} is not a plain field")
        if sub is None:
            return Const(negated)
        key_name = str(arg["key"])
        check_key(key_name)
        if key_name in self._protected(sub):
            raise Forbidden(f"This user is not allowed to query {key_name} on class {sub.name}")
        key = sub.fields.get(key_name)
        if key is None or key.join is not None or key.type in (FieldType.ARRAY, FieldType.OBJECT, FieldType.ACL):
            raise invalid_query(f"improper usage of {op}: {key_name} is not a plain field of {sub.name}")
        if ref is None or where == FALSE:
            return Const(negated)
        if _category(ref.spec) != _category(key):
            raise invalid_query(f"{op}: {ref.dotted} and {sub.name}.{key_name} have different types")
        return (DontSelect if negated else Select)(ref, sub.name, where, key)

    def related_to(self, spec: ClassSpec, arg: object) -> Node:
        obj = arg.get("object") if isinstance(arg, Mapping) else None
        key = arg.get("key") if isinstance(arg, Mapping) else None
        if not isinstance(obj, Mapping) or not isinstance(key, str) or obj.get("__type") != "Pointer":
            raise invalid_query("improper usage of $relatedTo")
        owner_name, object_id = obj.get("className"), obj.get("objectId")
        if not isinstance(owner_name, str) or not isinstance(object_id, str):
            raise invalid_query("improper usage of $relatedTo")
        owner = CLASSES.get(owner_name)
        if owner is None:
            return FALSE
        if key in self._protected(owner):
            raise Forbidden(f"This user is not allowed to query {key} on class {owner.name}")
        fspec = owner.fields.get(key)
        if fspec is None or fspec.join is None or fspec.target != spec.name:
            raise invalid_query(f"$relatedTo: {owner_name}.{key} is not a relation to {spec.name}")
        return RelatedTo(owner.name, object_id, fspec)
