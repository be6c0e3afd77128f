"""Type- and system-level history (FHIR R4 §3.1.0.5): ``GET /fhir/{type}/_history``, ``GET /fhir/_history``.

Versions come from the ``_Version`` table, newest first, each judged by the record rules
as they stood for that version (``versions.visible``), the way instance history is. A
patient-bound caller's scan is narrowed in SQL to their own rows first; the rest is
checked row by row. Pages are keyset pages on the version row id (signed cursor), so a
page never shifts while new versions are written. A scan stops after
:data:`SCAN_LIMIT` rows and hands out a ``next`` link from where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, and_, or_, select

from gateway.fhir import versions
from gateway.fhir.context import FhirContext, FhirRequest, FhirResponse
from gateway.fhir.cursor import Cursor, query_digest
from gateway.fhir.dates import parse_date
from gateway.fhir.includes import admit, row_filter
from gateway.fhir.outcome import bad_request
from gateway.fhir.registry import RESOURCES, Interaction, ResourceDef
from gateway.fhir.render import etag, to_resources
from gateway.policy.scopes import Interaction as ScopeInteraction
from gateway.store.classes import CLASSES, PATIENT_SCOPED
from gateway.store.models import Version, table_of
from gateway.store.objects import Record

_versions = table_of(Version)
DEFAULT_COUNT = 50
MAX_COUNT = 1000
SCAN_LIMIT = 5000
"""Version rows one request may examine (bounds the cost of a sparse page)."""
_KNOWN = frozenset({"_count", "_since", "_cursor", "_format", "_pretty"})


def _params(req: FhirRequest) -> tuple[int, datetime | None, str | None, list[tuple[str, str]]]:
    count, since, cursor = DEFAULT_COUNT, None, None
    echo: list[tuple[str, str]] = []
    strict = "handling=strict" in (req.header("prefer") or "").replace(" ", "").lower()
    for name, value in req.params:
        if name == "_count":
            if not value.isdigit():
                raise bad_request("_count must be a non-negative integer", "_count")
            count = max(1, min(int(value), MAX_COUNT))
            echo.append((name, str(count)))
        elif name == "_since":
            rng = parse_date(value, "_since")
            if rng.prefix != "eq":
                raise bad_request("_since takes an instant without a prefix", "_since")
            since = rng.low
            echo.append((name, value))
        elif name == "_cursor":
            cursor = value
        elif name not in _KNOWN and strict:
            raise bad_request(f"Unknown history parameter {name!r}", name)
    return count, since, cursor, echo


def _narrowing(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest) -> ColumnElement[bool] | None:
    """SQL that keeps a type's version rows the caller might see (``None``: the type is out of reach).

    Coarse on purpose: rows of the caller's own patients for a patient-bound caller, rows of
    objects inside the token's query restrictions; ``versions.visible`` decides each row.
    """
    admitted = admit(ctx.records, req.principal, rdef, ScopeInteraction.HISTORY_TYPE)
    if admitted is None:
        return None
    spec = CLASSES[rdef.class_name]
    cond: ColumnElement[bool] = _versions.c.className == spec.name
    ids = admitted.principal.patient_ids
    if ids is not None and spec.name == "PatientProfile":
        cond = and_(cond, _versions.c.objectId.in_(sorted(ids)))
    elif ids is not None and spec.name in PATIENT_SCOPED:
        cond = and_(cond, _versions.c.data["patient"].as_string().in_(sorted(ids)))
    if admitted.restrictions is not None:
        live = select(spec.pk).where(row_filter(ctx, rdef, spec, admitted))
        cond = and_(cond, _versions.c.objectId.in_(live))
    return cond


async def _history(
    ctx: FhirContext, req: FhirRequest, types: Sequence[ResourceDef], base: str, scope: str
) -> FhirResponse:
    count, since, cursor_text, echo = _params(req)
    digest = query_digest(scope, echo)
    await ctx.records.preload_clps()
    parts = [(rdef, _narrowing(ctx, rdef, req)) for rdef in types]
    reachable = [cond for _, cond in parts if cond is not None]
    by_class = {rdef.class_name: rdef for rdef, cond in parts if cond is not None}
    found: list[tuple[ResourceDef, Record, bool, int]] = []
    entries: list[dict[str, Any]] = []  # stays empty when no type is within reach (scopes, class rules)
    more = False
    last_scanned: int | None = None
    if reachable:
        where: ColumnElement[bool] = or_(*reachable)
        if since is not None:
            where = and_(where, _versions.c.createdAt >= since)
        if cursor_text is not None:
            cursor = ctx.cursors.decode(cursor_text, digest)
            if not cursor.last_id.isdigit():
                raise bad_request("Invalid paging cursor", "_cursor")
            where = and_(where, _versions.c.id < int(cursor.last_id))
        scanned = 0
        async with ctx.records.db.read() as conn:
            while len(found) <= count and scanned < SCAN_LIMIT:
                batch_where = where if last_scanned is None else and_(where, _versions.c.id < last_scanned)
                rows = (
                    await conn.execute(
                        select(
                            _versions.c.id,
                            _versions.c.className,
                            _versions.c.data,
                            _versions.c.deleted,
                            _versions.c.createdAt,
                        )
                        .where(batch_where)
                        .order_by(_versions.c.id.desc())
                        .limit(min(2 * count + 1, SCAN_LIMIT - scanned))
                    )
                ).all()
                if not rows:
                    break
                for row_id, class_name, data, deleted, created in rows:
                    scanned += 1
                    if len(found) > count:
                        break
                    last_scanned = int(row_id)
                    rdef = by_class[class_name]
                    spec = CLASSES[class_name]
                    record = versions.snapshot(spec, dict(data))
                    record.setdefault("updatedAt", created)
                    principal = admit(ctx.records, req.principal, rdef, ScopeInteraction.HISTORY_TYPE)
                    if principal is not None and await versions.visible(conn, spec, principal.principal, record):
                        found.append((rdef, record, bool(deleted), int(row_id)))
            more = len(found) > count or (scanned >= SCAN_LIMIT and last_scanned is not None)
            if len(found) > count:
                found = found[:count]
                last_scanned = found[-1][3]
            entries = await _entries(conn, ctx, found)
    for class_name in {rdef.class_name for rdef, _, _, _ in found}:
        shown = [rec for rdef, rec, gone, _ in found if rdef.class_name == class_name and not gone]
        if shown:
            await ctx.records.audit_search(req.principal, class_name, shown, query=urlencode(echo))
    links = [{"relation": "self", "url": _url(base, echo + ([("_cursor", cursor_text)] if cursor_text else []))}]
    if more and last_scanned is not None:
        token = ctx.cursors.encode(Cursor(digest, None, str(last_scanned)))
        links.append({"relation": "next", "url": _url(base, [*echo, ("_cursor", token)])})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "link": links}
    if entries:
        bundle["entry"] = entries
    return FhirResponse(200, bundle)


async def _entries(
    conn: Any, ctx: FhirContext, found: Sequence[tuple[ResourceDef, Record, bool, int]]
) -> list[dict[str, Any]]:
    rendered: dict[int, dict[str, Any]] = {}
    for rdef in {rdef.type: rdef for rdef, _, _, _ in found}.values():
        live = [(rid, rec) for r, rec, gone, rid in found if r.type == rdef.type and not gone]
        for (rid, _), res in zip(live, await to_resources(conn, ctx, rdef, [rec for _, rec in live]), strict=True):
            rendered[rid] = res
    out: list[dict[str, Any]] = []
    for rdef, record, gone, rid in found:
        oid = str(record["objectId"])
        vid = str(record.get("version") or 1)
        entry: dict[str, Any] = {"fullUrl": f"{ctx.fhir_base}/{rdef.type}/{oid}"}
        if not gone:
            entry["resource"] = rendered[rid]
        method = "DELETE" if gone else ("POST" if vid == "1" else "PUT")
        entry["request"] = {"method": method, "url": rdef.type if method == "POST" else f"{rdef.type}/{oid}"}
        entry["response"] = {"status": "204" if gone else ("201" if vid == "1" else "200"), "etag": etag(vid)}
        out.append(entry)
    return out


def _url(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base


async def history_type(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest) -> FhirResponse:
    """``GET /fhir/{type}/_history``."""
    return await _history(ctx, req, [rdef], f"{ctx.fhir_base}/{rdef.type}/_history", f"history:{rdef.type}")


async def history_system(ctx: FhirContext, req: FhirRequest) -> FhirResponse:
    """``GET /fhir/_history``: every versioned type the caller may reach; others are silently absent."""
    types = [r for r in RESOURCES.values() if r.supports(Interaction.HISTORY_TYPE)]
    return await _history(ctx, req, types, f"{ctx.fhir_base}/_history", "history:*")
