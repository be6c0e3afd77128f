"""``/schemas`` (master key only): the fixed classes and their class-level permissions.

The SQL schema is fixed by the data model and its migrations, so classes and fields
cannot be created or dropped here; CLPs can be read and changed (within the rules
that hold regardless, such as AuditLog being read-only).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert

from gateway.audit import AuditAction, AuditEntry, append
from gateway.errors import Forbidden, Invalid, ParseCode
from gateway.native.context import NativeContext, NativeResponse
from gateway.native.dispatch import route
from gateway.native.request import AppUnauthorized, NativeRequest
from gateway.policy.clp import Op
from gateway.policy.principal import Principal
from gateway.store.classes import CLASSES, ClassSpec, FieldType
from gateway.store.models import SchemaCLP, table_of

CLP_KEYS = frozenset({op.value for op in Op} | {"protectedFields", "readUserFields", "writeUserFields"})


class MasterKeyRequired(AppUnauthorized):
    def default_message(self) -> str:
        return "unauthorized: master key is required"


SCHEMA_ENTITY = "_SCHEMA"
"""The entity type of schema changes on the audit trail (Parse's own name for the schema collection)."""


async def _require_master(ctx: NativeContext, req: NativeRequest, change: AuditAction | None = None) -> Principal:
    """The master principal; anyone else is refused, and when ``change`` names a schema change the
    attempt is recorded as ``denied`` (catalog G02)."""
    principal = await ctx.principal(req)
    if not principal.is_master:
        if change is not None:
            await ctx.records.record_refusal(principal, change, SCHEMA_ENTITY, None, "master key is required")
        raise MasterKeyRequired()
    return principal


async def _refused(
    ctx: NativeContext, principal: Principal, change: AuditAction, class_name: str, reason: str
) -> Forbidden:
    """The refusal of a schema change, once it is on the audit trail (``raise await _refused(...)``)."""
    await ctx.records.record_refusal(principal, change, SCHEMA_ENTITY, class_name, reason)
    return Forbidden(reason)


def _field_json(spec: ClassSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, f in spec.fields.items():
        entry: dict[str, Any] = {"type": "Pointer" if f.type is FieldType.POINTER else f.type.value}
        if f.target and f.type in (FieldType.POINTER, FieldType.RELATION):
            entry["targetClass"] = f.target
        if f.required:
            entry["required"] = True
        out[name] = entry
    return out


async def _schema(ctx: NativeContext, spec: ClassSpec) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        clp = await ctx.records.clp(conn, spec.name)
    return {
        "className": spec.name,
        "fields": _field_json(spec),
        "classLevelPermissions": clp,
        "indexes": {"_id_": {"_id": 1}},
    }


def _spec(name: str) -> ClassSpec:
    spec = CLASSES.get(name)
    if spec is None:
        raise Invalid(f"Class {name} does not exist.", parse_code=ParseCode.INVALID_CLASS_NAME)
    return spec


@route("GET", "schemas")
async def list_schemas(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    await _require_master(ctx, req)
    return NativeResponse({"results": [await _schema(ctx, CLASSES[n]) for n in sorted(CLASSES)]})


@route("GET", "schemas/{className}")
async def get_schema(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    await _require_master(ctx, req)
    return NativeResponse(await _schema(ctx, _spec(params["className"])))


@route("POST", "schemas/{className}")
async def create_schema(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await _require_master(ctx, req, AuditAction.CREATE)
    name = params["className"]
    if name in CLASSES:
        raise Invalid(f"Class {name} already exists.", parse_code=ParseCode.INVALID_CLASS_NAME)
    reason = f"Class {name} cannot be created: the gateway's classes are fixed by its data model."
    raise await _refused(ctx, principal, AuditAction.CREATE, name, reason)


@route("PUT", "schemas/{className}")
async def update_schema(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await _require_master(ctx, req, AuditAction.UPDATE)
    spec = _spec(params["className"])
    if req.body.get("fields"):
        reason = f"Fields of {spec.name} cannot be changed: the schema is fixed by migrations."
        raise await _refused(ctx, principal, AuditAction.UPDATE, spec.name, reason)
    clp = req.body.get("classLevelPermissions")
    if clp is not None:
        _validate_clp(clp)
        async with ctx.db.write() as conn:
            await conn.execute(delete(table_of(SchemaCLP)).where(table_of(SchemaCLP).c.className == spec.name))
            await conn.execute(insert(table_of(SchemaCLP)), {"className": spec.name, "classLevelPermissions": clp})
            # Who changed which permissions is part of the trail, committed with the change itself.
            entry = AuditEntry(
                AuditAction.UPDATE, principal, SCHEMA_ENTITY, spec.name, metadata={"classLevelPermissions": clp}
            )
            await append(conn, entry)
        ctx.records.invalidate_clps()
    return NativeResponse(await _schema(ctx, spec))


@route("DELETE", "schemas/{className}")
async def delete_schema(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await _require_master(ctx, req, AuditAction.DELETE)
    spec = _spec(params["className"])
    reason = f"Class {spec.name} cannot be deleted: the gateway's classes are fixed by its data model."
    raise await _refused(ctx, principal, AuditAction.DELETE, spec.name, reason)


def _validate_clp(clp: object) -> None:
    if not isinstance(clp, dict):
        raise Invalid("classLevelPermissions must be an object", parse_code=ParseCode.INVALID_JSON)
    for key, rule in clp.items():
        if key not in CLP_KEYS:
            raise Invalid(
                f"{key} is not a valid operation for class level permissions", parse_code=ParseCode.INVALID_JSON
            )
        if not isinstance(rule, dict):
            raise Invalid(f"{key} must be an object", parse_code=ParseCode.INVALID_JSON)
        if key in (op.value for op in Op):
            for perm, allowed in rule.items():
                if allowed is not True and not (perm == "pointerFields" and isinstance(allowed, list)):
                    raise Invalid(
                        f"'{allowed}' is not a valid value for class level permissions {key}:{perm}",
                        parse_code=ParseCode.INVALID_JSON,
                    )
