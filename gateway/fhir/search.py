"""Type-level search: parameters -> SQL under the read policy, keyset pages, ``searchset`` Bundles.

FHIR R4 §3.1.1 (RESTful search) and §3.1.1.5.x (result parameters). Policy is the same
as every door's: ``Records.check`` (CLP) and ``Records.filter_for`` (ACL + patient bound)
are ANDed with the search predicate, so a page or a total never counts a hidden row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from sqlalchemy import ColumnElement, and_, false, or_, select, true

from gateway.fhir.context import FhirContext, FhirRequest, FhirResponse
from gateway.fhir.cursor import Cursor, query_digest
from gateway.fhir.includes import Include, admit, included, parse_include, row_filter
from gateway.fhir.outcome import FhirError, OutcomeIssue, bad_request, outcome
from gateway.fhir.params import ReferenceParam, SearchParam, missing_clause
from gateway.fhir.registry import MANDATORY, RESOURCES, RESULT_PARAMS, ResourceDef, includes_of, revincludes_of
from gateway.fhir.render import kept_json, to_resources
from gateway.policy.clp import Op
from gateway.policy.filters import filter_identity
from gateway.store.classes import CLASSES, ClassSpec
from gateway.store.objects import Record, count_records, select_records, select_statement
from gateway.store.statements import Built, StatementMemo

DEFAULT_COUNT = 50
MAX_COUNT = 1000


@dataclass(slots=True)
class SearchPlan:
    where: list[ColumnElement[bool]] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    sort: str | None = None
    descending: bool = False
    total: bool = False
    summary_count: bool = False
    cursor: str | None = None
    elements: tuple[str, ...] | None = None
    includes: list[Include] = field(default_factory=list)
    warnings: list[OutcomeIssue] = field(default_factory=list)
    echo: list[tuple[str, str]] = field(default_factory=list)
    """The parameters that took effect, for the ``self``/``next`` links."""


def _strict(req: FhirRequest) -> bool:
    prefer = (req.header("prefer") or "").replace(" ", "").lower()
    return "handling=strict" in prefer.split(",") or "handling=strict" in prefer.split(";")


def _int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise bad_request(f"{name} must be an integer", name) from exc
    if number < 0:
        raise bad_request(f"{name} must not be negative", name)
    return number


SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def _unsupported(plan: SearchPlan, strict: bool, message: str, expression: str) -> None:
    """Strict handling refuses what this server cannot do; lenient handling warns and carries on."""
    if strict:
        raise FhirError.of(400, "not-supported", message, expression)
    plan.warnings.append(OutcomeIssue("not-supported", message + " (ignored)", severity="warning"))


def _wildcard(rdef: ResourceDef, value: str, forward: bool, iterate: bool) -> list[str]:
    """``*`` (every reference of the searched type, or every one pointing at it for a revinclude)
    and ``Type:*`` (every reference parameter of ``Type``) expand to the values they stand for."""
    if value == "*":
        return includes_of(rdef) if forward else revincludes_of(rdef)
    source, _, param = value.partition(":")
    if param == "*" and source in RESOURCES:
        values = includes_of(RESOURCES[source])
        if not forward and not iterate:
            values = [v for v in values if v in revincludes_of(rdef)]
        return values
    return [value]


def _result_param(plan: SearchPlan, rdef: ResourceDef, raw_name: str, value: str, strict: bool) -> None:
    name, _, modifier = raw_name.partition(":")
    if name in ("_include", "_revinclude"):
        if modifier not in ("", "iterate", "recurse"):
            _unsupported(plan, strict, f"{raw_name} is not supported (only :iterate)", raw_name)
            return
        forward = name == "_include"
        found = [
            parse_include(rdef, v, forward=forward, iterate=bool(modifier))
            for v in _wildcard(rdef, value, forward, bool(modifier))
        ]
        if not found or None in found:
            _unsupported(plan, strict, f"Unsupported {raw_name}={value!r} for {rdef.type}", raw_name)
            return
        plan.includes += [inc for inc in found if inc is not None and inc not in plan.includes]
        plan.echo.append((raw_name, value))
        return
    if name == "_elements":
        wanted = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
        if not wanted:
            raise bad_request("_elements must name at least one element", "_elements")
        plan.elements = (*(plan.elements or ()), *wanted)
        plan.echo.append((name, value))
        return
    if name == "_count":
        plan.count = min(_int(value, name), MAX_COUNT)
        plan.echo.append((name, str(plan.count)))
        return
    if name == "_sort":
        key = value.removeprefix("-")
        if "," in value or key not in rdef.sorts:
            raise bad_request(f"Unsupported _sort {value!r}; supported: {', '.join(sorted(rdef.sorts))}", "_sort")
        plan.sort, plan.descending = key, value.startswith("-")
    elif name == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise bad_request("_total must be none, estimate or accurate", "_total")
        plan.total = value != "none"
    elif name == "_summary":
        if value not in ("count", "false"):
            raise bad_request("Only _summary=count (and false) is supported", "_summary")
        plan.summary_count = value == "count"
    elif name == "_cursor":
        plan.cursor = value
        return
    else:
        return  # _format/_pretty: applied by the transport
    plan.echo.append((name, value))


def _chain(
    ctx: FhirContext,
    req: FhirRequest,
    spec: ClassSpec,
    param: SearchParam,
    raw_name: str,
    modifier: str,
    tail: str,
    options: list[str],
) -> ColumnElement[bool]:
    """``ref[:Type].param[:modifier]=value`` (FHIR R4 §3.1.1.5.5), one level: the target rows are
    selected under the caller's read policy, so a chain never reveals a resource they cannot read."""
    if not isinstance(param, ReferenceParam):
        raise FhirError.of(400, "not-supported", f"{param.name} is not a reference; it cannot be chained", raw_name)
    if "." in tail:
        raise FhirError.of(400, "not-supported", "Only one level of chaining is supported", raw_name)
    if modifier and modifier not in param.targets:
        raise FhirError.of(400, "not-supported", f"{param.name} cannot point at {modifier}", raw_name)
    tname, _, tmod = tail.partition(":")
    parts: list[ColumnElement[bool]] = []
    known = False
    for target in [modifier] if modifier else param.targets:
        trdef = RESOURCES[target]
        tparam = trdef.params.get(tname)
        if tparam is None:
            continue
        known = True
        if tmod and tmod not in tparam.modifiers:
            raise FhirError.of(400, "not-supported", f"Unsupported modifier {raw_name!r}", raw_name)
        admitted = admit(ctx.records, req.principal, trdef)
        if admitted is None:
            parts.append(false())
            continue
        tspec = CLASSES[trdef.class_name]
        found = or_(*(tparam.clause(tspec, v, tmod or None, ctx.search) for v in options))
        ids = select(tspec.pk).where(and_(row_filter(ctx, trdef, tspec, admitted), found))
        parts.append(param.chain(spec, target, ids))
    if not known:
        raise bad_request(f"Unknown chained parameter {raw_name!r}", raw_name)
    return or_(*parts)


def plan_search(ctx: FhirContext, rdef: ResourceDef, spec: ClassSpec, req: FhirRequest) -> SearchPlan:
    """Parameters -> SQL conditions; ``Records.preload_clps`` must have run (chains check CLPs)."""
    plan = SearchPlan()
    strict = _strict(req)
    for raw_name, value in req.params:
        if "\x00" in raw_name or "\x00" in value:
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the driver.
            raise bad_request("Search parameters must not contain NUL characters", raw_name.replace("\x00", ""))
        head, dot, tail = raw_name.partition(".")
        name, _, modifier = head.partition(":")
        if name in RESULT_PARAMS:
            _result_param(plan, rdef, raw_name, value, strict)
            continue
        param = rdef.params.get(name)
        if param is None:
            message = f"Unknown search parameter {raw_name!r} for {rdef.type}"
            if strict:
                raise bad_request(message, raw_name)
            plan.warnings.append(OutcomeIssue("not-supported", message + " (ignored)", severity="warning"))
            continue
        if dot:
            options = [v for v in value.split(",") if v != ""]
            if options:
                plan.where.append(_chain(ctx, req, spec, param, raw_name, modifier, tail, options))
                plan.echo.append((raw_name, value))
            continue
        if modifier == "missing":
            plan.where.append(missing_clause(spec, param, value))
            plan.echo.append((raw_name, value))
            continue
        if modifier and modifier not in param.modifiers:
            raise FhirError.of(400, "not-supported", f"Unsupported modifier {raw_name!r}", raw_name)
        if value == "":
            continue
        options = [v for v in value.split(",") if v != ""]
        plan.where.append(or_(*(param.clause(spec, v, modifier or None, ctx.search) for v in options)))
        plan.echo.append((raw_name, value))
    if plan.count == 0:
        plan.summary_count = True
    if req.restrictions is not None:
        # The token's v2 query restrictions: one more AND, on every page and in every total.
        from gateway.fhir.scoping import restriction_clause

        plan.where.append(restriction_clause(ctx, rdef, spec, req.restrictions))
    return plan


def _sort_column(rdef: ResourceDef, spec: ClassSpec, plan: SearchPlan) -> Any:
    return spec.table.c[rdef.sorts[plan.sort]] if plan.sort else None


def _order(spec: ClassSpec, column: Any, descending: bool, reverse: bool = False) -> list[Any]:
    """``ORDER BY column [DESC] NULLS LAST, objectId``; ``reverse`` walks it backwards (``previous`` pages)."""
    if column is None:
        return [spec.pk.desc() if reverse else spec.pk.asc()]
    if reverse:
        primary = column.asc().nulls_first() if descending else column.desc().nulls_first()
        return [primary, spec.pk.desc()]
    primary = column.desc().nulls_last() if descending else column.asc().nulls_last()
    return [primary, spec.pk.asc()]


def _cursor_key(cursor: Cursor) -> datetime:
    try:
        return datetime.fromisoformat(str(cursor.key))
    except ValueError as exc:
        raise bad_request("Invalid paging cursor", "_cursor") from exc


def _before(spec: ClassSpec, column: Any, descending: bool, cursor: Cursor) -> ColumnElement[bool]:
    """Rows before the cursor in ``ORDER BY column [DESC] NULLS LAST, objectId``."""
    before_id = spec.pk < cursor.last_id
    if column is None:
        return before_id
    if cursor.key is None:
        return or_(column.is_not(None), and_(column.is_(None), before_id))
    key = _cursor_key(cursor)
    ahead = column > key if descending else column < key
    return or_(ahead, and_(column == key, before_id))


def _after(spec: ClassSpec, column: Any, descending: bool, cursor: Cursor) -> ColumnElement[bool]:
    """Rows after the cursor in ``ORDER BY column [DESC] NULLS LAST, objectId``."""
    after_id = spec.pk > cursor.last_id
    if column is None:
        return after_id
    if cursor.key is None:
        return and_(column.is_(None), after_id)
    key = _cursor_key(cursor)
    beyond = column < key if descending else column > key
    return or_(beyond, and_(column == key, after_id), column.is_(None))


def _key(record: Record, column: Any) -> Any:
    if column is None:
        return None
    value = record.get(column.name)
    return value.isoformat() if isinstance(value, datetime) else value


def _subset(resource: dict[str, Any], elements: tuple[str, ...]) -> dict[str, Any]:
    """``_elements`` (FHIR R4 §3.1.1.5.9): the named top-level elements plus ``resourceType``/``id``/
    ``meta`` and the type's mandatory elements, tagged SUBSETTED so nobody mistakes it for the whole."""
    keep = {"resourceType", "id", "meta", *elements, *MANDATORY[resource["resourceType"]]}
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out


_SEARCHES = StatementMemo()
"""First-page search statements by query and caller (see ``gateway.store.statements``)."""


def _search_key(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest) -> tuple[Any, ...] | None:
    """What a search's plan and first-page statement are a pure function of; ``None`` when they are
    not: chains (they consult other types' permissions), ``ap`` values (relative to now), token
    query restrictions, and cursor pages (each cursor is unique; remembering them would only churn)."""
    if req.restrictions is not None:
        return None
    for name, value in req.params:
        if "." in name or name == "_cursor" or value.startswith("ap") or ",ap" in value:
            return None
    return (rdef.type, ctx.records.db.dialect, filter_identity(req.principal), _strict(req), tuple(req.params))


def _first_page(ctx: FhirContext, rdef: ResourceDef, spec: ClassSpec, req: FhirRequest) -> Built:
    plan = plan_search(ctx, rdef, spec, req)
    records = ctx.records
    cond = (
        and_(records.filter_for(spec, req.principal), *plan.where)
        if plan.where
        else records.filter_for(spec, req.principal)
    )
    column = _sort_column(rdef, spec, plan)
    stmt = select_statement(spec, cond, order=_order(spec, column, plan.descending), limit=plan.count + 1)
    return Built(stmt, cond=cond, extra=(plan, query_digest(rdef.type, plan.echo), column))


async def search(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest) -> FhirResponse:
    records = ctx.records
    spec = records.spec(rdef.class_name, req.principal)
    await records.preload_clps()
    key = _search_key(ctx, rdef, req)
    first = _SEARCHES.get(key) if key is not None else None
    if first is None:
        first = _first_page(ctx, rdef, spec, req)
        if key is not None:
            _SEARCHES.put(key, first)
    remembered_plan, digest, column = first.extra
    plan = replace(remembered_plan, warnings=list(remembered_plan.warnings))  # this request adds its own
    cond = first.cond
    assert cond is not None
    cursor = ctx.cursors.decode(plan.cursor, digest) if plan.cursor is not None else None
    base = f"{ctx.fhir_base}/{rdef.type}"
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    extra: list[dict[str, Any]] = []
    async with records.db.read() as conn:
        await records.check(conn, rdef.class_name, Op.COUNT if plan.summary_count else Op.FIND, req.principal)
        rows: list[Record] = []
        more_after = more_before = False
        if not plan.summary_count:
            if cursor is not None and cursor.backward:
                rows = await select_records(
                    conn,
                    spec,
                    and_(cond, _before(spec, column, plan.descending, cursor)),
                    order=_order(spec, column, plan.descending, reverse=True),
                    limit=plan.count + 1,
                )
                more_before, more_after = len(rows) > plan.count, True
                rows = rows[: plan.count][::-1]
            elif cursor is None:
                rows = await select_records(conn, spec, built=first)
                more_after = len(rows) > plan.count
                rows = rows[: plan.count]
            else:
                page_cond = and_(cond, _after(spec, column, plan.descending, cursor))
                rows = await select_records(
                    conn, spec, page_cond, order=_order(spec, column, plan.descending), limit=plan.count + 1
                )
                more_after = len(rows) > plan.count
                rows = rows[: plan.count]
                if rows:
                    head = Cursor(digest, _key(rows[0], column), str(rows[0]["objectId"]), True)
                    before = and_(cond, _before(spec, column, plan.descending, head))
                    more_before = bool(await select_records(conn, spec, before, limit=1, with_joins=False))
        if plan.total or plan.summary_count:
            bundle["total"] = await count_records(conn, spec, cond if cond is not None else true())
        resources = await to_resources(conn, ctx, rdef, rows)
        if plan.includes and rows:
            extra, warnings = await included(conn, ctx, req.principal, rdef, rows, plan.includes)
            plan.warnings += warnings
    if not plan.summary_count and records.reads.enabled:
        await records.audit_search(
            req.principal, rdef.class_name, rows, query=_encoded(plan.echo), included=_audited_includes(extra)
        )
    bundle["link"] = [{"relation": "self", "url": _url(base, plan.echo, plan.cursor)}]
    if more_after and rows:
        token = ctx.cursors.encode(Cursor(digest, _key(rows[-1], column), str(rows[-1]["objectId"])))
        bundle["link"].append({"relation": "next", "url": _url(base, plan.echo, token)})
    if more_before and rows:
        token = ctx.cursors.encode(Cursor(digest, _key(rows[0], column), str(rows[0]["objectId"]), True))
        bundle["link"].append({"relation": "previous", "url": _url(base, plan.echo, token)})
    if plan.elements:
        resources = [_subset(res, plan.elements) for res in resources]
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/{res['id']}", "resource": res, "search": {"mode": "match"}} for res in resources
    ]
    entries += [
        {
            "fullUrl": f"{ctx.fhir_base}/{res['resourceType']}/{res['id']}",
            "resource": res,
            "search": {"mode": "include"},
        }
        for res in extra
    ]
    if plan.warnings:
        entries.append({"resource": outcome(*plan.warnings), "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return FhirResponse(200, bundle, encoded=None if plan.elements else _encoded_bundle(ctx, rdef, bundle, rows))


def _encoded_bundle(ctx: FhirContext, rdef: ResourceDef, bundle: dict[str, Any], rows: list[Record]) -> bytes | None:
    """The Bundle's JSON with each matched resource the row memo keeps spliced in as the bytes it
    encoded before (``render.kept_json``, ``msgspec.Raw``) rather than encoded again; the rest is
    encoded as usual, so the result is the encoding of ``bundle``. None when nothing is kept."""
    kept = [kept_json(rdef, row, ctx.options) for row in rows]
    if not any(kept):
        return None
    entries = list(bundle["entry"])
    for i, raw in enumerate(kept):  # the first len(rows) entries are the matches, in order
        if raw is not None:
            entries[i] = {**entries[i], "resource": msgspec.Raw(raw)}
    return msgspec.json.encode({**bundle, "entry": entries})


def _audited_includes(resources: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Included resources as (native class, minimal record) for the read audit (``gateway.audit.reads``)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for res in resources:
        rdef = RESOURCES.get(str(res.get("resourceType")))
        if rdef is None:
            continue
        subject = res.get("subject") or res.get("patient") or {}
        ref = str(subject.get("reference") or "") if isinstance(subject, dict) else ""
        patient = ref.rpartition("/")[2] if ref.rpartition("/")[0].endswith("Patient") else None
        out.append((rdef.class_name, {"objectId": res["id"], "patient": patient}))
    return out


def _url(base: str, params: list[tuple[str, str]], cursor: str | None = None) -> str:
    query = _encoded(params)
    if cursor:
        query = f"{query}&{urlencode([('_cursor', cursor)])}" if query else urlencode([("_cursor", cursor)])
    return f"{base}?{query}" if query else base


_ENCODED: dict[tuple[tuple[str, str], ...], str] = {}


def _encoded(params: list[tuple[str, str]]) -> str:
    """``urlencode`` of a search's echoed parameters, remembered: every page of a search links
    itself with the same parameters, and quoting them costs more than the lookup."""
    key = tuple(params)
    text = _ENCODED.get(key)
    if text is None:
        text = urlencode(params)
        if len(_ENCODED) >= 1024:
            _ENCODED.clear()
        _ENCODED[key] = text
    return text


async def matches(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, query: str, limit: int = 2) -> list[Record]:
    """Rows ``query`` finds for the caller (conditional create's ``If-None-Exist``); unknown parameters are 400."""
    params = parse_qsl(query.removeprefix("?"), keep_blank_values=True)
    if not params or any(name.partition(":")[0] in RESULT_PARAMS for name, _ in params):
        raise bad_request("If-None-Exist must be a search query without result parameters", "If-None-Exist")
    probe = FhirRequest("GET", req.principal, params, {"prefer": "handling=strict"}, restrictions=req.restrictions)
    spec = ctx.records.spec(rdef.class_name, req.principal)
    await ctx.records.preload_clps()
    plan = plan_search(ctx, rdef, spec, probe)
    cond = and_(ctx.records.filter_for(spec, req.principal), *plan.where)
    async with ctx.records.db.read() as conn:
        await ctx.records.check(conn, rdef.class_name, Op.FIND, req.principal)
        return await select_records(conn, spec, cond, order=[spec.pk.asc()], limit=limit)
