"""Litestar adapter for the FHIR door: HTTP in, ``router.handle`` in the middle, bytes out.

The routes are generated from ``registry.RESOURCES`` x ``router.ROUTES``. Methods a
path does not support get an undocumented handler answering 405 with an
OperationOutcome, and an unknown resource type a 404 one, so nothing under ``/fhir``
ever answers in another format. Content negotiation: JSON only (406 otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, Response, Router, route
from litestar.datastructures import MultiDict
from litestar.enums import HttpMethod
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from gateway.encoded_response import EncodedResponse
from gateway.fhir import router
from gateway.fhir.auth import authenticate
from gateway.fhir.context import FhirContext, FhirRequest, FhirResponse
from gateway.fhir.outcome import FhirError, OutcomeIssue
from gateway.fhir.registry import RESOURCES
from gateway.policy.principal import RequestInfo
from gateway.request_ids import new_request_id

log = logging.getLogger("gateway.fhir")

FHIR_JSON = "application/fhir+json; charset=utf-8"
FHIR_DOC = "application/fhir+json"
JSON_TYPES = frozenset({"application/fhir+json", "application/json", "json", "application/json+fhir"})
ACCEPTABLE = JSON_TYPES | {"*/*", "application/*"}
FORM = "application/x-www-form-urlencoded"


@dataclass
class OutcomeIssueDoc:
    """``OperationOutcome.issue`` as this server sends it."""

    severity: str
    code: str
    diagnostics: str
    expression: list[str] | None = None


@dataclass
class OperationOutcome:
    """Every FHIR error body (FHIR R4 ``OperationOutcome``)."""

    resourceType: str
    issue: list[OutcomeIssueDoc]


_ERROR_TEXT = {
    400: "Bad request: unparseable body, invalid search value or cursor, strict handling",
    401: "No or invalid credentials (WWW-Authenticate: Bearer)",
    403: "Authenticated but not allowed (class permissions, administrators only)",
    404: "Not found, or not visible to the caller (the same body)",
    406: "Only JSON is produced (_format / Accept)",
    409: "Conflict (a unique value is taken, or a concurrent change)",
    410: "Deleted",
    412: "If-Match does not name the current version",
    415: "Unsupported Content-Type",
    422: "The resource cannot be stored faithfully (OperationOutcome names the element)",
}
_INTERACTION_ERRORS = {
    "read": (410,),
    "vread": (410,),
    "history-instance": (),
    "history-type": (),
    "search-type": (415,),
    "create": (409, 415, 422),
    "update": (409, 410, 412, 415, 422),
    "delete": (409,),
}


def _responses(interaction: str) -> dict[int, ResponseSpec]:
    codes = (400, 401, 403, 404, 406, *_INTERACTION_ERRORS[interaction])
    out = {
        code: ResponseSpec(data_container=OperationOutcome, description=_ERROR_TEXT[code], media_type=FHIR_DOC)
        for code in sorted(codes)
    }
    if interaction == "delete":
        out[204] = ResponseSpec(data_container=None, description="Deleted (no body)")
    return out


def render(resp: FhirResponse, pretty: bool = False) -> Response[bytes]:
    if resp.body is None:
        return Response(content=b"", status_code=resp.status, headers=resp.headers)
    content = resp.encoded if resp.encoded is not None else msgspec.json.encode(resp.body)
    if pretty:
        content = msgspec.json.format(content, indent=2)
    return EncodedResponse(content, resp.status, resp.headers, FHIR_JSON)


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The request's headers by lower-case name (the last of a repeated one), read once from the
    ASGI scope: Litestar's ``Headers`` was built three times a request, once per lookup."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}


def _negotiate(query: Mapping[str, str], headers: Mapping[str, str]) -> None:
    """406 for XML or anything else we cannot produce (CapabilityStatement.format says json only)."""
    fmt = query.get("_format")
    if fmt is not None and _media(fmt) not in JSON_TYPES:
        raise FhirError.of(406, "not-supported", f"_format {fmt!r} is not supported; this server speaks JSON only.")
    accept = headers.get("accept")
    if accept and not any(_media(part) in ACCEPTABLE for part in accept.split(",")):
        raise FhirError.of(406, "not-supported", "Only application/fhir+json is available.")


def _check_body_type(headers: Mapping[str, str], expected: frozenset[str], body: bytes) -> None:
    ctype = _media(headers.get("content-type") or "")
    if body and ctype not in expected:
        raise FhirError.of(415, "not-supported", f"Unsupported Content-Type {ctype or '(none)'!r}.")


def _context(request: Request[Any, Any, Any]) -> FhirContext:
    ctx: FhirContext | None = getattr(request.app.state, "fhir", None)
    if ctx is None:
        ctx = FhirContext.build(request.app.state.settings, request.app.state.records)
        request.app.state.fhir = ctx
    return ctx


async def _fhir_request(
    request: Request[Any, Any, Any],
    ctx: FhirContext,
    form: bool,
    query: MultiDict[str],
    headers: dict[str, str],
) -> FhirRequest:
    # Only POST and PUT carry a resource or a form; a body on any other interaction is ignored unread.
    body = await request.body() if request.method in ("POST", "PUT") else b""
    params = list(query.multi_items())
    if form:
        _check_body_type(headers, frozenset({FORM}), body)
        params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        body = b""
    elif request.method in ("POST", "PUT"):
        _check_body_type(headers, JSON_TYPES, body)
    client = request.scope.get("client")
    info = RequestInfo(
        source_address=client[0] if client else None,
        request_id=headers.get("x-request-id") or new_request_id(),
    )
    principal = await authenticate(ctx.records.db, ctx.settings, headers, info)
    # Class permissions loaded once (then cached): chained parameters and scope restrictions
    # compile to SQL synchronously and check them without I/O.
    await ctx.records.preload_clps()
    return FhirRequest(request.method, principal, params, headers, body)


def _pretty(query: Mapping[str, str]) -> bool:
    return query.get("_pretty") == "true"


def _handler(resource_type: str, r: router.Route | None, name: str) -> Callable[..., Awaitable[Response[Any]]]:
    async def handle(request: Request[Any, Any, Any]) -> Response[Any]:
        ctx = _context(request)
        query, headers = request.query_params, _headers(request)
        try:
            _negotiate(query, headers)
            req = await _fhir_request(request, ctx, r is not None and r.pattern == "_search", query, headers)
        except FhirError as exc:
            return render(router.error_response(exc))
        path = {k: str(v) for k, v in request.path_params.items()}
        return render(await router.handle(ctx, resource_type, r, req, path), _pretty(query))

    handle.__name__ = name
    handle.__doc__ = f"FHIR {r.summary if r else 'unsupported method'} ({resource_type})"
    return handle


async def metadata(request: Request[Any, Any, Any]) -> Response[Any]:
    """FHIR capabilities interaction: the CapabilityStatement (public, as FHIR R4 §3.1.0.12 expects)."""
    query = request.query_params
    try:
        _negotiate(query, _headers(request))
    except FhirError as exc:
        return render(router.error_response(exc))
    return render(await router.metadata(_context(request)), _pretty(query))


def _system(kind: str, name: str) -> Callable[..., Awaitable[Response[Any]]]:
    """A system-level interaction (``GET /fhir/_history``, ``POST /fhir``): same credentials and errors."""

    async def handle(request: Request[Any, Any, Any]) -> Response[Any]:
        ctx = _context(request)
        query, headers = request.query_params, _headers(request)
        try:
            _negotiate(query, headers)
            req = await _fhir_request(request, ctx, False, query, headers)
        except FhirError as exc:
            return render(router.error_response(exc))
        return render(await router.handle_system(ctx, kind, req), _pretty(query))

    handle.__name__ = name
    handle.__doc__ = {
        "history": "FHIR system history: every version the caller may see, newest first",
        "bundle": "FHIR batch or transaction: a Bundle of interactions in, a batch-/transaction-response out",
    }[kind]
    return handle


async def unknown(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Anything under /fhir that no resource route matches."""
    exc = FhirError.of(404, "not-supported", f"Unknown resource type or path: {request.url.path}")
    return render(router.error_response(exc))


def _litestar_path(resource_type: str, pattern: str) -> str:
    tail = pattern.replace("{id}", "{id:str}").replace("{vid}", "{vid:str}")
    return f"/{resource_type}" + (f"/{tail}" if tail else "")


def _operation_id(resource_type: str, r: router.Route) -> str:
    words = "".join(w.capitalize() for w in r.summary.replace("(", "").replace(")", "").split())
    return f"fhir{resource_type}{words}"


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    codes = {404: "not-found", 405: "not-supported", 413: "too-costly"}
    code = codes.get(exc.status_code, "invalid" if exc.status_code < 500 else "exception")
    return render(router.error_response(FhirError(exc.status_code, OutcomeIssue(code, str(exc.detail)))))


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """500 with a correlation id only; never the exception text (it may quote health data)."""
    request_id = new_request_id()
    log.error("unhandled %s in %s %s (request %s)", type(exc).__name__, request.method, request.url.path, request_id)
    issue = OutcomeIssue("exception", f"Internal server error. Request id: {request_id}")
    return render(router.error_response(FhirError(500, issue)))


def build_fhir_router() -> Router:
    handlers: list[HTTPRouteHandler] = [
        route(
            "/metadata",
            http_method=[HttpMethod.GET],
            operation_id="fhirMetadata",
            tags=["fhir"],
            media_type=FHIR_DOC,
            responses={406: ResponseSpec(OperationOutcome, description=_ERROR_TEXT[406], media_type=FHIR_DOC)},
        )(metadata),
        route(
            "/_history",
            http_method=[HttpMethod.GET],
            operation_id="fhirHistorySystem",
            summary="system history",
            tags=["fhir"],
            media_type=FHIR_DOC,
            responses={
                code: ResponseSpec(OperationOutcome, description=_ERROR_TEXT[code], media_type=FHIR_DOC)
                for code in (400, 401, 406)
            },
        )(_system("history", "fhirHistorySystem")),
        route(
            "/",
            http_method=[HttpMethod.POST],
            operation_id="fhirBatchTransaction",
            summary="batch or transaction",
            tags=["fhir"],
            status_code=200,
            media_type=FHIR_DOC,
            responses={
                code: ResponseSpec(OperationOutcome, description=_ERROR_TEXT[code], media_type=FHIR_DOC)
                for code in (400, 401, 404, 406, 409, 412, 415, 422)
            },
        )(_system("bundle", "fhirBatchTransaction")),
    ]
    for rdef in RESOURCES.values():
        supported = router.routes_for(rdef)
        for pattern in dict.fromkeys(r.pattern for r in router.ROUTES):
            here = {r.method: r for r in supported if r.pattern == pattern}
            for method, r in here.items():
                handlers.append(
                    route(
                        _litestar_path(rdef.type, pattern),
                        http_method=[HttpMethod(method)],
                        operation_id=_operation_id(rdef.type, r),
                        summary=f"{r.summary} {rdef.type}",
                        tags=[f"fhir:{rdef.type}"],
                        status_code=201 if r.interaction.value == "create" else 200,
                        media_type=FHIR_DOC,
                        responses=_responses(r.interaction.value),
                    )(_handler(rdef.type, r, _operation_id(rdef.type, r)))
                )
            rest = [HttpMethod(m) for m in router.METHODS if m not in here]
            name = f"fhir{rdef.type}{pattern.replace('/', '').replace('{', '').replace('}', '')}Unsupported"
            handlers.append(
                route(
                    _litestar_path(rdef.type, pattern),
                    http_method=rest,
                    include_in_schema=False,
                    name=name,
                    status_code=200,
                )(_handler(rdef.type, None, name))
            )
    handlers.append(
        route(
            "/{path:path}",
            http_method=[HttpMethod(m) for m in router.METHODS],
            include_in_schema=False,
            status_code=200,
        )(unknown)
    )
    return Router(
        path="/fhir",
        route_handlers=handlers,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
