"""Litestar routes for the native door, generated from the one route table in ``dispatch``.

Every pattern also answers POST, because the Parse JavaScript SDK sends every call as
a POST whose body names the real method (``_method``). Errors render as Parse's
``{code, error}`` with Parse Server's status codes (101 -> 404, others -> 400).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, Router, route
from litestar.enums import HttpMethod
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from gateway.encoded_response import EncodedResponse
from gateway.errors import GatewayError, ParseCode
from gateway.native import batch, functions, health, objects, roles, schemas, sessions, users
from gateway.native.context import NativeContext, NativeResponse, parse_error_body
from gateway.native.dispatch import dispatch, patterns
from gateway.native.request import AppUnauthorized, native_request
from gateway.request_ids import new_request_id

_MODULES = (batch, functions, health, objects, roles, schemas, sessions, users)
"""Importing these registers their handlers in the route table."""

log = logging.getLogger("gateway.native")

JSON = "application/json; charset=utf-8"
CREATES = frozenset({"classes/{className}", "users", "roles", "sessions"})


def render(resp: NativeResponse) -> Response[bytes]:
    return EncodedResponse(msgspec.json.encode(resp.body), resp.status, resp.headers, JSON)


def error_response(status: int, body: dict[str, Any]) -> Response[bytes]:
    return EncodedResponse(msgspec.json.encode(body), status, None, JSON)


def gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[bytes]:
    if isinstance(exc, AppUnauthorized):
        return error_response(403, {"error": exc.message})
    status = 404 if exc.parse_code == ParseCode.OBJECT_NOT_FOUND else 400
    if exc.parse_code == ParseCode.OBJECT_TOO_LARGE:
        status = 413
    if exc.status_code >= 500:
        status = exc.status_code  # e.g. the audit trail could not record a read: retryable, not bad input
    return error_response(status, parse_error_body(exc.parse_code, exc.message))


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if status == 413:
        return error_response(413, parse_error_body(ParseCode.OBJECT_TOO_LARGE, "Request body is too large."))
    if status == 404:
        return error_response(
            404, parse_error_body(ParseCode.INVALID_JSON, f"Cannot {request.method} {request.url.path}")
        )
    if status == 405:
        return error_response(
            405, parse_error_body(ParseCode.INVALID_JSON, f"Cannot {request.method} {request.url.path}")
        )
    return error_response(status, parse_error_body(ParseCode.OTHER_CAUSE, str(exc.detail)))


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """500 with a correlation id only; the log names the error type and code location, never its
    message (driver errors quote SQL parameters, i.e. health data: catalog H02)."""
    request_id = request.headers.get("x-parse-request-id") or request.headers.get("x-request-id") or new_request_id()
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
    log.error(
        "unhandled %s in %s %s at %s (request %s)",
        type(exc).__name__,
        request.method,
        request.url.path,
        where,
        request_id,
    )
    return error_response(
        500, parse_error_body(ParseCode.INTERNAL_SERVER_ERROR, f"Internal server error. Request id: {request_id}")
    )


def _operation_id(method: str, pattern: str) -> str:
    words = [w.strip("{}") for w in pattern.split("/")]
    return "parse" + method.capitalize() + "".join(w[:1].upper() + w[1:] for w in words)


def _litestar_path(pattern: str) -> str:
    return "/" + pattern.replace("}", ":str}")


def _handler(pattern: str, method: str) -> Callable[..., Awaitable[Response[bytes]]]:
    async def handle(request: Request[Any, Any, Any]) -> Response[Any]:
        ctx: NativeContext = request.app.state.native
        req = await native_request(request, ctx.settings)
        return render(await dispatch(ctx, pattern, req, dict(request.path_params)))

    handle.__name__ = _operation_id(method, pattern)
    handle.__doc__ = f"Parse REST {method} /parse/{pattern}" + (
        " (also accepts the JS SDK form: POST with `_method` in a JSON body)" if method == "POST" else ""
    )
    return handle


@dataclass
class ParseError:
    """Parse Server's error body."""

    code: int
    error: str


@dataclass
class AppError:
    """Parse Server's body for a refused application id or key."""

    error: str


ERROR_RESPONSES = {
    400: ResponseSpec(data_container=ParseError, description="Parse error (code other than 101)"),
    403: ResponseSpec(
        data_container=AppError, description='Missing or wrong application id / keys: {"error": "unauthorized"}'
    ),
    404: ResponseSpec(data_container=ParseError, description="Not found or not visible (code 101)"),
    413: ResponseSpec(data_container=ParseError, description="Request body over the configured limit (code 116)"),
}
PARSE_SECURITY: list[dict[str, list[str]]] = [
    {"parseApplicationId": [], "parseSessionToken": []},
    {"parseApplicationId": [], "parseMasterKey": []},
    {"parseApplicationId": []},
]


def build_router() -> Router:
    handlers: list[HTTPRouteHandler] = []
    for pattern, methods in sorted(patterns().items()):
        wanted = set(methods) | {"POST"}
        for method in sorted(wanted):
            tag = pattern.split("/", 1)[0]
            handlers.append(
                route(
                    _litestar_path(pattern),
                    http_method=[HttpMethod(method)],
                    operation_id=_operation_id(method, pattern),
                    tags=[f"parse:{tag}"],
                    summary=f"{method} /parse/{pattern}",
                    status_code=201 if method == "POST" and pattern in CREATES else 200,
                    responses=ERROR_RESPONSES,
                    security=PARSE_SECURITY,
                )(_handler(pattern, method))
            )
    return Router(
        path="/parse",
        route_handlers=handlers,
        exception_handlers={GatewayError: gateway_error, HTTPException: http_error, Exception: internal_error},
    )


__all__ = ["_MODULES", "build_router"]
