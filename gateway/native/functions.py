"""Cloud functions (``POST /parse/functions/{name}``) named in the contract.

``issuePortalActivation`` (staff), ``activatePortal`` (the signed-up patient),
``myAccessLog`` (the patient's own access history) and ``createSmartLaunch`` (an EHR
launch value for a SMART app, gateway.smart.launch). An unknown name is Parse's 141.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from gateway.errors import ScriptFailed
from gateway.native.codec import iso
from gateway.native.context import NativeContext, NativeResponse
from gateway.native.dispatch import route
from gateway.native.request import NativeRequest
from gateway.policy.principal import Principal
from gateway.records import activation
from gateway.smart.launch import create_launch
from gateway.store.models import AuditLog, PatientProfile, table_of

CloudFunction = Callable[[NativeContext, Principal, dict[str, Any]], Awaitable[Any]]

ACCESS_LOG_LIMIT = 200


class FunctionRegistry:
    def __init__(self) -> None:
        self._functions: dict[str, CloudFunction] = {}

    def register(self, name: str) -> Callable[[CloudFunction], CloudFunction]:
        def add(fn: CloudFunction) -> CloudFunction:
            self._functions[name] = fn
            return fn

        return add

    def get(self, name: str) -> CloudFunction:
        fn = self._functions.get(name)
        if fn is None:
            raise ScriptFailed(f'Invalid function: "{name}"')
        return fn

    def names(self) -> list[str]:
        return sorted(self._functions)


FUNCTIONS = FunctionRegistry()


@route("POST", "functions/{name}")
async def run_function(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    fn = ctx.functions.get(params["name"])
    return NativeResponse({"result": await fn(ctx, principal, req.body)})


@FUNCTIONS.register("issuePortalActivation")
async def issue_portal_activation(ctx: NativeContext, principal: Principal, params: dict[str, Any]) -> Any:
    patient_id = params.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise ScriptFailed("patientId is required.")
    issued = await activation.issue(ctx.records, principal, patient_id)
    return {"code": issued.code, "expiresAt": {"__type": "Date", "iso": iso(issued.expires_at)}}


@FUNCTIONS.register("activatePortal")
async def activate_portal(ctx: NativeContext, principal: Principal, params: dict[str, Any]) -> Any:
    patient_id = await activation.activate(ctx.records, principal, params.get("code"), params.get("dateOfBirth"))
    return {"patient": {"__type": "Pointer", "className": "PatientProfile", "objectId": patient_id}}


@FUNCTIONS.register("createSmartLaunch")
async def create_smart_launch(ctx: NativeContext, principal: Principal, params: dict[str, Any]) -> Any:
    """An EHR ``launch`` value for a SMART app, for a patient the signed-in caller can see (single use)."""
    patient_id = params.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise ScriptFailed("patientId is required.")
    if not principal.is_user:
        raise ScriptFailed("Sign in to launch an app.")
    await ctx.records.get(principal, "PatientProfile", patient_id)
    launch = await create_launch(ctx.db, ctx.settings, principal, patient_id)
    return {"launch": launch.value, "expiresAt": {"__type": "Date", "iso": iso(launch.expires_at)}}


@FUNCTIONS.register("myAccessLog")
async def my_access_log(ctx: NativeContext, principal: Principal, params: dict[str, Any]) -> Any:
    """Who touched my records, newest first, in plain terms (no hashes, no internal ids of others)."""
    if not principal.is_user:
        raise ScriptFailed("Sign in to see your access history.")
    patients = table_of(PatientProfile)
    log = table_of(AuditLog)
    async with ctx.db.read() as conn:
        mine = (await conn.execute(select(patients.c.objectId).where(patients.c.user == principal.user_id))).first()
        if mine is None:
            return []
        rows = await conn.execute(
            select(
                log.c.objectId,
                log.c.createdAt,
                log.c.actorName,
                log.c.actor,
                log.c.action,
                log.c.entityType,
                log.c.entityId,
                log.c.outcome,
            )
            .where(log.c.patient == mine.objectId)
            .order_by(log.c.seq.desc())
            .limit(ACCESS_LOG_LIMIT)
        )
        found = rows.all()
    # Reading the trail is itself recorded (gateway.audit.reads: AuditLog reads carry no patient).
    await ctx.records.audit_search(
        principal, "AuditLog", [{"objectId": r.objectId} for r in found], query="myAccessLog"
    )
    return [
        {
            "when": iso(r.createdAt),
            "who": "you" if r.actor == principal.user_id else r.actorName,
            "action": r.action,
            "record": r.entityType,
            "recordId": r.entityId,
            "outcome": r.outcome,
        }
        for r in found
    ]
