"""The FHIR router: one table of (method, pattern) -> interaction; no HTTP in here.

``handle`` takes a :class:`FhirRequest` and returns a :class:`FhirResponse` whose body
is a resource, a Bundle or an OperationOutcome. Routes (``routes``) and the
CapabilityStatement (``capability``) are generated from the same :data:`ROUTES` and
``registry.RESOURCES``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from gateway.audit import AuditAction
from gateway.errors import GatewayError
from gateway.fhir import bundles, history, interactions, scoping, search
from gateway.fhir.capability import capability_statement
from gateway.fhir.context import FhirContext, FhirRequest, FhirResponse
from gateway.fhir.outcome import FhirError, from_gateway, not_found
from gateway.fhir.registry import RESOURCES, Interaction, ResourceDef
from gateway.fhir.transaction import in_transaction
from gateway.policy.scopes import Interaction as ScopeInteraction
from gateway.policy.scopes import Restriction

Handler = Callable[..., Awaitable[FhirResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: str
    """Relative to ``/fhir/{type}``: ``""``, ``"{id}"``, ``"{id}/_history/{vid}"`` ..."""
    interaction: Interaction
    handler: Handler
    summary: str


ROUTES: tuple[Route, ...] = (
    Route("GET", "{id}", Interaction.READ, interactions.read, "read"),
    Route("GET", "{id}/_history/{vid}", Interaction.VREAD, interactions.vread, "vread"),
    Route("GET", "{id}/_history", Interaction.HISTORY_INSTANCE, interactions.history, "instance history"),
    Route("GET", "_history", Interaction.HISTORY_TYPE, history.history_type, "type history"),
    Route("GET", "", Interaction.SEARCH_TYPE, search.search, "search"),
    Route("POST", "_search", Interaction.SEARCH_TYPE, search.search, "search (form body)"),
    Route("POST", "", Interaction.CREATE, interactions.create, "create"),
    Route("PUT", "{id}", Interaction.UPDATE, interactions.update, "update"),
    Route("DELETE", "{id}", Interaction.DELETE, interactions.delete, "delete"),
)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def routes_for(rdef: ResourceDef) -> list[Route]:
    return [r for r in ROUTES if rdef.supports(r.interaction)]


def _guard(rdef: ResourceDef, req: FhirRequest) -> None:
    """Types reserved to administrators for callers without scopes (a Parse session); a SMART
    token reaches them through its scopes (``patient/AuditEvent.rs`` ...) and the record rules."""
    if rdef.admin_only and req.principal.scopes is None and not req.principal.is_admin:
        raise FhirError.of(403, "forbidden", f"{rdef.type} is available to administrators only.")


async def scoped_request(
    ctx: FhirContext, rdef: ResourceDef, route: Route, req: FhirRequest, path: dict[str, Any]
) -> FhirRequest:
    """SMART scopes first (403 naming the scope), then the request as the record rules must see it.

    :func:`handle` calls it for every interaction; a transaction calls it for every entry
    before it writes anything (``bundles``), so both agree on what is allowed.

    A conditional create also searches (and returns what it finds), so ``If-None-Exist``
    needs the search permission too, under the same restrictions a search would have.
    """
    scoped = scoping.scoped(req, rdef.type, route.interaction.value)
    if route.interaction is Interaction.CREATE and req.header("if-none-exist") is not None:
        searching = scoping.scoped(req, rdef.type, Interaction.SEARCH_TYPE.value)
        scoped = replace(scoped, restrictions=searching.restrictions)
    elif "id" in path:
        await scoping.within_restrictions(ctx, rdef, scoped, path["id"])
    return scoped


_WRITES = frozenset({Interaction.CREATE, Interaction.UPDATE, Interaction.DELETE})
_REFUSED_ACTIONS = {
    "POST": AuditAction.CREATE,
    "PUT": AuditAction.UPDATE,
    "PATCH": AuditAction.UPDATE,
    "DELETE": AuditAction.DELETE,
}
"""HTTP method of a refused write -> the audit action the attempt is recorded under (a type that does
not support writes has no write routes, so the method is all there is to go by)."""


async def _restricted_write(
    ctx: FhirContext,
    rdef: ResourceDef,
    route: Route,
    req: FhirRequest,
    path: dict[str, Any],
    restrictions: tuple[Restriction, ...],
) -> FhirResponse:
    """A write under a v2 query-restricted scope (``user/Observation.cu?category=laboratory``):
    the resource must match the restriction before (update, delete: else 404, as if absent)
    and after (create, update: else 403 naming the scope). The write and the check after it
    are one database transaction, so a resource that ends up outside is never committed."""
    probe = replace(req, restrictions=restrictions)
    async with in_transaction(ctx) as tx:
        if "id" in path:
            await scoping.within_restrictions(tx, rdef, probe, path["id"])
        resp = await route.handler(tx, rdef, req, **path)
        if resp.status < 300 and route.interaction is not Interaction.DELETE:
            written = path.get("id") or _written_id(resp)
            try:
                if written is None:
                    raise not_found()
                await scoping.within_restrictions(tx, rdef, probe, written)
            except FhirError as exc:
                queries = " or ".join(r.query for r in restrictions)
                raise FhirError.of(
                    403, "forbidden", f"The access token may write {rdef.type} only where {queries}."
                ) from exc
    return resp


def _written_id(resp: FhirResponse) -> str | None:
    """The id a create answered with: the body's, else the ``Location`` header's (``return=minimal``)."""
    if resp.body is not None and resp.body.get("resourceType") != "OperationOutcome" and "id" in resp.body:
        return str(resp.body["id"])
    location = next((v for k, v in resp.headers.items() if k.lower() == "location"), None)
    if location is None:
        return None
    return location.split("/fhir/", 1)[-1].split("/")[1]


async def handle(
    ctx: FhirContext, resource_type: str, route: Route | None, req: FhirRequest, path: dict[str, Any]
) -> FhirResponse:
    """Run one interaction; every failure comes back as an OperationOutcome response."""
    try:
        rdef = RESOURCES[resource_type]
        if route is None or not rdef.supports(route.interaction):
            message = f"{req.method} is not supported here for {resource_type}."
            action = _REFUSED_ACTIONS.get(req.method)
            if action is not None:
                # A write on a read-only type (AuditEvent): refused, and the attempt is on the trail.
                await ctx.records.record_refusal(req.principal, action, rdef.class_name, path.get("id"), message)
            raise FhirError.of(405, "not-supported", message)
        scoped = await scoped_request(ctx, rdef, route, req, path)
        _guard(rdef, scoped)
        if route.interaction in _WRITES:
            restricted = scoping.access(req, rdef.type, ScopeInteraction(route.interaction.value)).restrictions
            if restricted is not None:
                return await _restricted_write(ctx, rdef, route, scoped, path, restricted)
        return await route.handler(ctx, rdef, scoped, **path)
    except FhirError as exc:
        return error_response(exc)
    except GatewayError as exc:
        return error_response(from_gateway(exc))


async def handle_system(ctx: FhirContext, kind: str, req: FhirRequest) -> FhirResponse:
    """System-level interactions: ``history`` (``GET /fhir/_history``) and ``bundle`` (``POST /fhir``).

    Scopes are asked per resource type inside (history admits each type it scans; a
    Bundle routes every entry through :func:`handle`)."""
    try:
        if kind == "history":
            return await history.history_system(ctx, req)
        return await bundles.process(ctx, req)
    except FhirError as exc:
        return error_response(exc)
    except GatewayError as exc:
        return error_response(from_gateway(exc))


def error_response(exc: FhirError) -> FhirResponse:
    return FhirResponse(exc.status, exc.body(), dict(exc.headers))


async def metadata(ctx: FhirContext) -> FhirResponse:
    return FhirResponse(200, capability_statement(ctx))
