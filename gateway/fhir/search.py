"""Type-level search: parameters -> SQL under the read policy, keyset pages, ``searchset`` Bundles.

FHIR R4 §3.1.1 (RESTful search) and §3.1.1.5.x (result parameters). Policy is the same
as every door's: ``Records.check`` (CLP) and ``Records.filter_for`` (ACL + patient bound)
are ANDed with the search predicate, so a page or a total never counts a hidden row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import ColumnElement, and_, or_, true

from gateway.fhir.context import FhirContext, FhirRequest, FhirResponse
from gateway.fhir.cursor import Cursor, query_digest
from gateway.fhir.outcome import FhirError, OutcomeIssue, bad_request, outcome
from gateway.fhir.params import missing_clause
from gateway.fhir.registry import RESULT_PARAMS, ResourceDef
from gateway.fhir.render import to_resources
from gateway.policy.clp import Op
from gateway.store.classes import ClassSpec
from gateway.store.objects import Record, count_records, select_records

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


def _result_param(plan: SearchPlan, rdef: ResourceDef, name: str, value: str) -> None:
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


def plan_search(ctx: FhirContext, rdef: ResourceDef, spec: ClassSpec, req: FhirRequest) -> SearchPlan:
    plan = SearchPlan()
    strict = _strict(req)
    for raw_name, value in req.params:
        if "\x00" in raw_name or "\x00" in value:
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the driver.
            raise bad_request("Search parameters must not contain NUL characters", raw_name.replace("\x00", ""))
        name, _, modifier = raw_name.partition(":")
        if name in RESULT_PARAMS:
            _result_param(plan, rdef, name, value)
            continue
        param = rdef.params.get(name)
        if param is None:
            message = f"Unknown search parameter {raw_name!r} for {rdef.type}"
            if strict:
                raise bad_request(message, raw_name)
            plan.warnings.append(OutcomeIssue("not-supported", message + " (ignored)", severity="warning"))
            continue
        if modifier == "missing":
            plan.where.append(missing_clause(spec, param, value))
            plan.echo.append((raw_name, value))
            continue
        if modifier and modifier not in param.modifiers and not (param.type == "reference" and modifier == "Patient"):
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


def _order(spec: ClassSpec, column: Any, descending: bool) -> list[Any]:
    if column is None:
        return [spec.pk.asc()]
    primary = column.desc().nulls_last() if descending else column.asc().nulls_last()
    return [primary, spec.pk.asc()]


def _after(spec: ClassSpec, column: Any, descending: bool, cursor: Cursor) -> ColumnElement[bool]:
    """Rows after the cursor in ``ORDER BY column [DESC] NULLS LAST, objectId``."""
    after_id = spec.pk > cursor.last_id
    if column is None:
        return after_id
    if cursor.key is None:
        return and_(column.is_(None), after_id)
    try:
        key = datetime.fromisoformat(str(cursor.key))
    except ValueError as exc:
        raise bad_request("Invalid paging cursor", "_cursor") from exc
    beyond = column < key if descending else column > key
    return or_(beyond, and_(column == key, after_id), column.is_(None))


def _key(record: Record, column: Any) -> Any:
    if column is None:
        return None
    value = record.get(column.name)
    return value.isoformat() if isinstance(value, datetime) else value


async def search(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest) -> FhirResponse:
    records = ctx.records
    spec = records.spec(rdef.class_name, req.principal)
    plan = plan_search(ctx, rdef, spec, req)
    digest = query_digest(rdef.type, plan.echo)
    cond = (
        and_(records.filter_for(spec, req.principal), *plan.where)
        if plan.where
        else records.filter_for(spec, req.principal)
    )
    column = _sort_column(rdef, spec, plan)
    page_cond = cond
    if plan.cursor is not None:
        page_cond = and_(cond, _after(spec, column, plan.descending, ctx.cursors.decode(plan.cursor, digest)))
    base = f"{ctx.fhir_base}/{rdef.type}"
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    async with records.db.read() as conn:
        await records.check(conn, rdef.class_name, Op.COUNT if plan.summary_count else Op.FIND, req.principal)
        rows: list[Record] = []
        if not plan.summary_count:
            rows = await select_records(
                conn, spec, page_cond, order=_order(spec, column, plan.descending), limit=plan.count + 1
            )
        if plan.total or plan.summary_count:
            bundle["total"] = await count_records(conn, spec, cond if cond is not None else true())
        more = len(rows) > plan.count
        rows = rows[: plan.count]
        resources = await to_resources(conn, ctx, rdef, rows)
    self_params = plan.echo + ([("_cursor", plan.cursor)] if plan.cursor else [])
    bundle["link"] = [{"relation": "self", "url": _url(base, self_params)}]
    if more and rows:
        token = ctx.cursors.encode(Cursor(digest, _key(rows[-1], column), str(rows[-1]["objectId"])))
        bundle["link"].append({"relation": "next", "url": _url(base, [*plan.echo, ("_cursor", token)])})
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/{res['id']}", "resource": res, "search": {"mode": "match"}} for res in resources
    ]
    if plan.warnings:
        entries.append({"resource": outcome(*plan.warnings), "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return FhirResponse(200, bundle)


def _url(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base


async def matches(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, query: str, limit: int = 2) -> list[Record]:
    """Rows ``query`` finds for the caller (conditional create's ``If-None-Exist``); unknown parameters are 400."""
    params = parse_qsl(query.removeprefix("?"), keep_blank_values=True)
    if not params or any(name.partition(":")[0] in RESULT_PARAMS for name, _ in params):
        raise bad_request("If-None-Exist must be a search query without result parameters", "If-None-Exist")
    probe = FhirRequest("GET", req.principal, params, {"prefer": "handling=strict"}, restrictions=req.restrictions)
    spec = ctx.records.spec(rdef.class_name, req.principal)
    plan = plan_search(ctx, rdef, spec, probe)
    cond = and_(ctx.records.filter_for(spec, req.principal), *plan.where)
    async with ctx.records.db.read() as conn:
        await ctx.records.check(conn, rdef.class_name, Op.FIND, req.principal)
        return await select_records(conn, spec, cond, order=[spec.pk.asc()], limit=limit)
