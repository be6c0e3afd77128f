"""Instance interactions (FHIR R4 §3.1.0): read, vread, history, create, update, delete.

Each is a few lines: ask ``Records`` (the one policy) or the version store, map, answer.
Writes validate with ``fhir.resources`` R4B models, then with the mapping's ``from_fhir``,
and go through ``Records.create/update/delete`` so policy and audit match the native door.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import msgspec
from pydantic import ValidationError

from gateway.errors import GatewayError, Invalid, NotFound
from gateway.fhir import search, versions
from gateway.fhir.context import FhirContext, FhirRequest, FhirResponse
from gateway.fhir.outcome import FhirError, OutcomeIssue, bad_request, from_gateway, not_found, outcome
from gateway.fhir.registry import ResourceDef
from gateway.fhir.render import etag, kept_json, to_resources, version_headers
from gateway.fhir.transaction import condition_key, in_transaction, lock_row
from gateway.records.ops import FieldOp, OpKind
from gateway.store.objects import Record
from mappings.native_fhir import MappingError

_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')
ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _gone() -> FhirError:
    return FhirError.of(410, "deleted", "Resource was deleted.")


async def _current(
    ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, object_id: str, *, audit: bool = False
) -> Record:
    """The visible current record; a deleted one the caller could see is 410, anything else 404.

    ``audit``: a read returned to the caller is audited; update/delete read first and are
    audited by their own write entry."""
    if not ID.match(object_id):
        raise not_found()
    try:
        return await ctx.records.get(req.principal, rdef.class_name, object_id, audit=audit)
    except NotFound:
        pass
    spec = ctx.records.spec(rdef.class_name, req.principal)
    async with ctx.records.db.read() as conn:
        if await versions.deleted(conn, spec, req.principal, object_id) is not None:
            raise _gone() from None
    raise not_found()


async def _one(ctx: FhirContext, rdef: ResourceDef, record: Record) -> dict[str, Any]:
    async with ctx.records.db.read() as conn:
        return (await to_resources(conn, ctx, rdef, [record]))[0]


async def read(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, id: str) -> FhirResponse:
    record = await _current(ctx, rdef, req, id, audit=True)
    resource = await _one(ctx, rdef, record)
    return FhirResponse(200, resource, version_headers(record), kept_json(rdef, record, ctx.options))


async def vread(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, id: str, vid: str) -> FhirResponse:
    if not ID.match(id) or not vid.isdigit():
        raise not_found()
    spec = ctx.records.spec(rdef.class_name, req.principal)
    async with ctx.records.db.read() as conn:
        found = await versions.history(conn, spec, req.principal, id, int(vid))
        if not found:
            raise not_found()
        record, deleted = found[0]
        if deleted:
            raise _gone()
        resource = (await to_resources(conn, ctx, rdef, [record]))[0]
    await ctx.records.audit_read(req.principal, rdef.class_name, record, interaction="vread")
    return FhirResponse(200, resource, version_headers(record))


async def history(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, id: str) -> FhirResponse:
    if not ID.match(id):
        raise not_found()
    spec = ctx.records.spec(rdef.class_name, req.principal)
    url = f"{ctx.fhir_base}/{rdef.type}/{id}"
    async with ctx.records.db.read() as conn:
        found = await versions.history(conn, spec, req.principal, id)
        if not found:
            raise not_found()
        live = [r for r, gone in found if not gone]
        resources = iter(await to_resources(conn, ctx, rdef, live))
    await ctx.records.audit_read(req.principal, rdef.class_name, found[0][0], interaction="history")
    entries: list[dict[str, Any]] = []
    for record, gone in found:
        vid = str(record.get("version") or 1)
        entry: dict[str, Any] = {"fullUrl": url}
        if not gone:
            entry["resource"] = next(resources)
        method = "DELETE" if gone else ("POST" if vid == "1" else "PUT")
        entry["request"] = {"method": method, "url": f"{rdef.type}/{id}" if vid != "1" else rdef.type}
        status = "204" if gone else ("201" if vid == "1" else "200")
        entry["response"] = {"status": status, "etag": etag(vid)}
        entries.append(entry)
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(entries),
        "link": [{"relation": "self", "url": f"{url}/_history"}],
        "entry": entries,
    }
    return FhirResponse(200, bundle)


# ------------------------------------------------------------------ writes


def _decode(rdef: ResourceDef, req: FhirRequest) -> dict[str, Any]:
    try:
        resource = msgspec.json.decode(req.body)
    except msgspec.DecodeError as exc:
        raise bad_request("The body is not valid JSON.") from exc
    if b"\\u0000" in req.body:
        raise bad_request("Strings must not contain NUL characters.")
    if not isinstance(resource, dict) or resource.get("resourceType") != rdef.type:
        raise bad_request(f"Expected a {rdef.type} resource.", f"{rdef.type}.resourceType")
    model = getattr(importlib.import_module(f"fhir.resources.R4B.{rdef.type.lower()}"), rdef.type)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        issues = [
            OutcomeIssue("structure", str(err.get("msg")), expression=".".join([rdef.type, *map(str, err["loc"])]))
            for err in exc.errors()[:20]
        ]
        raise FhirError(400, *issues) from exc
    return resource


async def _draft(ctx: FhirContext, rdef: ResourceDef, resource: dict[str, Any]) -> dict[str, Any]:
    from_fhir = rdef.mapping.from_fhir
    if from_fhir is None:
        raise FhirError.of(405, "not-supported", f"{rdef.type} is read-only.")
    refs: dict[str, str] = {}
    if rdef.type == "Communication":
        refs = await _participant_refs(ctx, resource)
    try:
        return from_fhir(resource, ctx.options, user_refs=refs)
    except MappingError as exc:
        issues = [OutcomeIssue(i.code, i.message, expression=i.expression) for i in exc.issues]
        raise FhirError(422, *issues) from exc


async def _participant_refs(ctx: FhirContext, resource: dict[str, Any]) -> dict[str, str]:
    """``_User`` -> profile reference for the profiles named as Communication sender/recipient."""
    from sqlalchemy import select

    from gateway.store.models import PatientProfile, ProviderProfile, table_of

    named: dict[str, list[str]] = {"Patient": [], "Practitioner": []}
    refs = [resource.get("sender"), *(resource.get("recipient") or [])]
    for item in refs:
        text = item.get("reference") if isinstance(item, dict) else None
        if isinstance(text, str):
            kind, _, oid = text.removeprefix(ctx.fhir_base + "/").partition("/")
            if kind in named and oid:
                named[kind].append(oid)
    out: dict[str, str] = {}
    async with ctx.records.db.read() as conn:
        for kind, model in (("Patient", PatientProfile), ("Practitioner", ProviderProfile)):
            if not named[kind]:
                continue
            table = table_of(model)
            rows = await conn.execute(
                select(table.c.user, table.c.objectId).where(
                    table.c.objectId.in_(named[kind]), table.c.user.is_not(None)
                )
            )
            out.update({str(user): f"{kind}/{oid}" for user, oid in rows})
    return out


def _ops(rdef: ResourceDef, draft: dict[str, Any], current: Record | None) -> list[FieldOp]:
    ops: list[FieldOp] = []
    for name, value in draft.items():
        before = None if current is None else current.get(name)
        if current is not None and value == before:
            continue
        if value is None or value == []:
            if before not in (None, []):
                ops.append(FieldOp(name, OpKind.DELETE))
            continue
        ops.append(FieldOp(name, OpKind.SET, value))
    return ops


async def create(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest) -> FhirResponse:
    resource = _decode(rdef, req)
    condition = req.header("if-none-exist")
    if condition is None:
        return await _create(ctx, rdef, req, resource)
    # FHIR R4 §3.1.0.8 conditional create: one match -> 200 with it, several -> 412, none -> create;
    # the search and the insert are one transaction, serialized per (type, condition).
    async with in_transaction(ctx, lock=condition_key(rdef.type, condition)) as tx:
        found = await search.matches(tx, rdef, req, condition)
        if len(found) > 1:
            raise FhirError.of(412, "duplicate", "If-None-Exist matches more than one resource.")
        if found:
            return FhirResponse(200, await _one(tx, rdef, found[0]), version_headers(found[0]))
        return await _create(tx, rdef, req, resource)


async def _create(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, resource: dict[str, Any]) -> FhirResponse:
    draft = await _draft(ctx, rdef, resource)
    try:
        result = await ctx.records.create(req.principal, rdef.class_name, _ops(rdef, draft, None))
    except NotFound as exc:
        raise FhirError.of(422, "not-found", "A referenced resource does not exist or is not visible.") from exc
    record = result.record
    headers = version_headers(record)
    headers["Location"] = f"{ctx.fhir_base}/{rdef.type}/{record['objectId']}/_history/{record.get('version') or 1}"
    return _returned(req, 201, await _one(ctx, rdef, record), headers)


def _returned(req: FhirRequest, status: int, resource: dict[str, Any], headers: dict[str, str]) -> FhirResponse:
    """``Prefer: return=minimal|representation|OperationOutcome`` (FHIR R4 §3.1.0.2.2); default representation."""
    prefer = (req.header("prefer") or "").replace(" ", "").lower()
    if "return=minimal" in prefer:
        return FhirResponse(status, None, headers)
    if "return=operationoutcome" in prefer:
        done = OutcomeIssue("informational", f"{resource['resourceType']}/{resource['id']} stored.", "information")
        return FhirResponse(status, outcome(done), headers)
    return FhirResponse(status, resource, headers)


def _if_match(req: FhirRequest) -> int | None:
    value = req.header("if-match")
    if value is None:
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise bad_request('If-Match must be a version ETag such as W/"3"', "If-Match")
    return int(match.group(1))


async def update(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, id: str) -> FhirResponse:
    resource = _decode(rdef, req)
    if resource.get("id") != id:
        raise bad_request("The resource id must match the URL.", f"{rdef.type}.id")
    wanted = _if_match(req)
    if wanted is None:
        return await _update(ctx, rdef, req, id, resource, None)
    # The version check and the write in one transaction, the row locked first: a writer that
    # lost the race sees the winner's version and answers 412.
    async with in_transaction(ctx) as tx:
        await lock_row(tx, ctx.records.spec(rdef.class_name, req.principal), id)
        return await _update(tx, rdef, req, id, resource, wanted)


async def _update(
    ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, id: str, resource: dict[str, Any], wanted: int | None
) -> FhirResponse:
    current = await _current(ctx, rdef, req, id)
    if wanted is not None and wanted != int(current.get("version") or 1):
        raise FhirError.of(412, "conflict", f"Version {wanted} is not the current version.")
    draft = await _draft(ctx, rdef, resource)
    try:
        result = await ctx.records.update(req.principal, rdef.class_name, id, _ops(rdef, draft, current))
    except NotFound as exc:
        raise FhirError.of(403, "forbidden", "You may read this resource but not change it.") from exc
    return _returned(req, 200, await _one(ctx, rdef, result.record), version_headers(result.record))


async def delete(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, id: str) -> FhirResponse:
    try:
        await _current(ctx, rdef, req, id)
    except FhirError as exc:
        if exc.status == 410:
            return FhirResponse(204)
        raise
    try:
        await ctx.records.delete(req.principal, rdef.class_name, id)
    except NotFound as exc:
        raise FhirError.of(403, "forbidden", "You may read this resource but not delete it.") from exc
    except Invalid as exc:
        # The store refuses to delete a row other rows still point at: a conflict, not bad input.
        raise FhirError.of(409, "conflict", exc.message) from exc
    except GatewayError as exc:
        raise from_gateway(exc) from exc
    return FhirResponse(204)
