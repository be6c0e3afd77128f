"""``/batch``: several requests in one, each authorized exactly as if sent alone.

Entries run in order and independently (Parse's default, non-transactional batch);
one entry's failure is reported in its slot and does not undo the others.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError, Invalid, ParseCode
from gateway.native.context import NativeContext, NativeResponse, parse_error_body
from gateway.native.dispatch import dispatch, match, route
from gateway.native.request import NativeRequest

METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})


@route("POST", "batch")
async def batch(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    await ctx.principal(req)
    requests = req.body.get("requests")
    if not isinstance(requests, list):
        raise Invalid("requests must be an array", parse_code=ParseCode.INVALID_JSON)
    if len(requests) > ctx.settings.batch_max_requests:
        raise Invalid(
            f"a batch may hold at most {ctx.settings.batch_max_requests} requests",
            parse_code=ParseCode.INVALID_JSON,
        )
    if req.body.get("transaction") is True:
        raise Invalid(
            "transactional batches are not supported; send the requests without transaction",
            parse_code=ParseCode.COMMAND_UNAVAILABLE,
        )
    results: list[dict[str, Any]] = []
    for entry in requests:
        try:
            results.append({"success": (await _one(ctx, req, entry)).body})
        except GatewayError as exc:
            results.append({"error": parse_error_body(exc.parse_code, exc.message)})
    return NativeResponse(results)


async def _one(ctx: NativeContext, parent: NativeRequest, entry: object) -> NativeResponse:
    if not isinstance(entry, dict):
        raise Invalid("each batch request must be an object", parse_code=ParseCode.INVALID_JSON)
    method, path, body = entry.get("method"), entry.get("path"), entry.get("body") or {}
    if not isinstance(method, str) or method.upper() not in METHODS or not isinstance(path, str):
        raise Invalid("a batch request needs method and path", parse_code=ParseCode.INVALID_JSON)
    if not isinstance(body, dict):
        raise Invalid("a batch request body must be an object", parse_code=ParseCode.INVALID_JSON)
    pattern, path_params = match(path)
    if pattern == "batch":
        raise Invalid("batches cannot be nested", parse_code=ParseCode.INVALID_JSON)
    method = method.upper()
    sub = parent.sub_request(method, {} if method == "GET" else dict(body), dict(body) if method == "GET" else {})
    return await dispatch(ctx, pattern, sub, path_params)
