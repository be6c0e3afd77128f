"""``/parse/classes/{className}[/{objectId}]``: find, get, create, update, delete."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import Invalid, ParseCode
from gateway.native import query
from gateway.native.codec import decode_body, iso
from gateway.native.context import NativeContext, NativeResponse
from gateway.native.dispatch import route
from gateway.native.encode import page_json, to_json
from gateway.native.request import NativeRequest, reject_nul
from gateway.policy.clp import Op
from gateway.policy.filters import filter_identity
from gateway.policy.principal import Principal
from gateway.records.service import find_records, find_statement
from gateway.store.classes import CLASSES, ClassSpec
from gateway.store.statements import Built, StatementMemo

OPTION_KEYS = frozenset(
    {
        "where",
        "order",
        "limit",
        "skip",
        "keys",
        "excludeKeys",
        "include",
        "count",
        "includeAll",
        "readPreference",
        "includeReadPreference",
        "subqueryReadPreference",
        "hint",
        "explain",
        "redirectClassNameForKey",
    }
)


def _int_option(options: dict[str, Any], name: str, default: int) -> int:
    value = options.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"{name} must be a number", parse_code=ParseCode.INVALID_QUERY) from exc
    if isinstance(value, float) and value != number:
        raise Invalid(f"{name} must be an integer", parse_code=ParseCode.INVALID_QUERY)
    return number


def _json_option(options: dict[str, Any], name: str) -> Any:
    value = options.get(name)
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value.encode())
        except msgspec.DecodeError as exc:
            raise Invalid(f"{name} is not valid JSON", parse_code=ParseCode.INVALID_JSON) from exc
        reject_nul(value)
    return value


def _str_option(options: dict[str, Any], name: str) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string", parse_code=ParseCode.INVALID_QUERY)
    return value


def _truthy(value: Any) -> bool:
    return value in (1, True, "1", "true", "True")


_FINDS = StatementMemo()
"""Find statements by query and caller (see ``gateway.store.statements``)."""


async def find(ctx: NativeContext, principal: Principal, class_name: str, options: dict[str, Any]) -> dict[str, Any]:
    spec = ctx.records.spec(class_name, principal)
    settings = ctx.settings
    hidden = ctx.records.hidden_fields(spec, principal, {})
    limit = _int_option(options, "limit", settings.parse_limit_default)
    skip = _int_option(options, "skip", 0)
    if limit < 0 or skip < 0:
        raise Invalid("limit and skip must not be negative", parse_code=ParseCode.INVALID_QUERY)
    limit = min(limit, settings.parse_limit_max)
    order_opt = _str_option(options, "order") or ""
    key = _find_key(ctx, principal, spec, hidden, options.get("where"), order_opt, limit, skip)
    built = _FINDS.get(key) if key is not None else None
    if built is None:
        built, reusable = await _find_statement(ctx, principal, spec, hidden, options, order_opt, limit, skip)
        if key is not None and reusable:
            _FINDS.put(key, built)
    include_opt = _str_option(options, "include")
    include = (
        query.parse_include(spec, include_opt, settings.include_max_depth, protected=hidden) if include_opt else None
    )
    keys_opt = _str_option(options, "keys")
    keys = _keys(keys_opt)
    count = _truthy(options.get("count"))
    result = await find_records(
        ctx.records,
        principal,
        class_name,
        built=built,
        limit=limit,
        skip=skip,
        count=count,
        include=include,
        query=_query_text(options) if ctx.records.reads.enabled else None,
    )
    body: dict[str, Any] = {
        "results": page_json(spec, result.records, lambda r: ctx.records.hidden_fields(spec, principal, r), keys=keys)
    }
    if result.count is not None:
        body["count"] = result.count
    return body


def _query_text(options: dict[str, Any]) -> str:
    """The query as the caller sent it, for the audit entry of the search."""
    return msgspec.json.encode(options, order="sorted", enc_hook=str).decode()


def _find_key(
    ctx: NativeContext,
    principal: Principal,
    spec: ClassSpec,
    hidden: frozenset[str],
    where_opt: Any,
    order_opt: str,
    limit: int,
    skip: int,
) -> tuple[Any, ...] | None:
    """What a find statement is a pure function of: the class, the query as sent, and the caller's
    policy identity and hidden fields. ``where`` arrives as JSON text (REST) or already decoded (the
    JS SDK's POST form), which is keyed by its sorted JSON; anything else is not remembered."""
    if where_opt is None or isinstance(where_opt, str):
        where_text = where_opt or ""
    elif isinstance(where_opt, dict):
        try:
            where_text = msgspec.json.encode(where_opt, order="sorted").decode()
        except (TypeError, msgspec.EncodeError):
            return None
    else:
        return None
    return (spec.name, ctx.db.dialect, filter_identity(principal), hidden, where_text, order_opt, limit, skip)


async def _find_statement(
    ctx: NativeContext,
    principal: Principal,
    spec: ClassSpec,
    hidden: frozenset[str],
    options: dict[str, Any],
    order_opt: str,
    limit: int,
    skip: int,
) -> tuple[Built, bool]:
    """Parse and compile ``where`` and ``order`` into the page statement; the flag says whether it may
    be remembered (not when a sub-query consulted another class's permissions)."""
    settings = ctx.settings
    limits = query.QueryLimits(
        max_depth=settings.where_max_depth,
        regex_max_length=settings.regex_max_length,
        in_max_items=settings.in_max_items,
    )
    where_doc = _json_option(options, "where") or {}
    node = query.parse_where(
        spec,
        where_doc,
        limits,
        protected=hidden,
        protected_for=lambda other: ctx.records.hidden_fields(other, principal, {}),
    )
    await ctx.records.preload_clps()
    consulted: list[str] = []

    def sub_filter(other: ClassSpec) -> Any:
        consulted.append(other.name)
        return _sub_filter(ctx, principal, other)

    cctx = query.CompileContext(dialect=ctx.db.dialect, subquery_filter=sub_filter)
    where = query.compile_where(node, spec, cctx)
    order = query.compile_order(query.parse_order(spec, order_opt, protected=hidden), spec)
    built = find_statement(ctx.records, principal, spec, where, order, limit, skip)
    return built, not consulted


def _keys(keys_opt: str | None) -> frozenset[str] | None:
    if not keys_opt:
        return None
    return frozenset(k.split(".", 1)[0] for k in keys_opt.split(",") if k)


def _sub_filter(ctx: NativeContext, principal: Principal, spec: ClassSpec) -> Any:
    """A sub-query ($inQuery, $select, $relatedTo) reads another class: its CLP and ACL apply too."""
    ctx.records.check_loaded(spec.name, Op.FIND, principal)
    return ctx.records.filter_for(spec, principal)


@route("GET", "classes/{className}")
async def find_objects(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    return NativeResponse(await find(ctx, principal, params["className"], req.options))


@route("POST", "classes/{className}")
async def create_object(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    class_name = params["className"]
    spec = ctx.records.spec(class_name, principal)
    ops, _ = decode_body(spec, req.body)
    result = await ctx.records.create(principal, class_name, ops)
    object_id = result.record["objectId"]
    location = f"{ctx.settings.base_url}/parse/classes/{class_name}/{object_id}"
    return NativeResponse(
        {"objectId": object_id, "createdAt": iso(result.record["createdAt"])},
        status=201,
        headers={"Location": location},
    )


@route("GET", "classes/{className}/{objectId}")
async def get_object(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    return NativeResponse(await get(ctx, principal, params["className"], params["objectId"], req.options))


async def get(
    ctx: NativeContext, principal: Principal, class_name: str, object_id: str, options: dict[str, Any]
) -> dict[str, Any]:
    spec = ctx.records.spec(class_name, principal)
    include_opt = _str_option(options, "include")
    include = query.parse_include(spec, include_opt, ctx.settings.include_max_depth) if include_opt else None
    record = await ctx.records.get(principal, class_name, object_id, include=include)
    return to_json(
        spec,
        record,
        keys=_keys(_str_option(options, "keys")),
        hidden=ctx.records.hidden_fields(spec, principal, record),
    )


@route("PUT", "classes/{className}/{objectId}")
async def update_object(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    return NativeResponse(await update(ctx, principal, params["className"], params["objectId"], req.body))


async def update(
    ctx: NativeContext, principal: Principal, class_name: str, object_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    spec = ctx.records.spec(class_name, principal)
    ops, _ = decode_body(spec, body)
    result = await ctx.records.update(principal, class_name, object_id, ops)
    out: dict[str, Any] = {"updatedAt": iso(result.record["updatedAt"])}
    if result.op_results:
        encoded = to_json(spec, result.record, keys=frozenset(result.op_results))
        out.update({k: encoded[k] for k in result.op_results if k in encoded})
    return out


@route("DELETE", "classes/{className}/{objectId}")
async def delete_object(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    await ctx.records.delete(principal, params["className"], params["objectId"])
    return NativeResponse({})


def class_names() -> list[str]:
    return sorted(CLASSES)
