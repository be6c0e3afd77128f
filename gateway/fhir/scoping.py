"""SMART scope enforcement on the FHIR door: the adapter between HTTP and ``gateway.policy.smart``.

Every interaction passes :func:`scoped` before its handler runs (``router.handle`` via
``router.scoped_request``, which a transaction also calls for each entry before it writes);
code that reaches further resources on the caller's behalf (``_include``/``_revinclude``
targets, chained parameters, type and system history) asks the same policy function,
``gateway.policy.smart.authorize``, through ``includes.admit``. :func:`scoped` returns the
request as the handler must see it: the principal the record rules apply to (confined to
the launch patient's compartment for a ``patient/`` grant) and the token's v2 query
restrictions, which search ANDs into its SQL (:func:`restriction_clause`) and
single-resource interactions check with :func:`within_restrictions` (outside them is 404,
the same answer as a missing resource: "denied looks like absent").
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import ColumnElement, and_, false, or_, select

from gateway.errors import NotFound
from gateway.fhir.context import FhirContext, FhirRequest
from gateway.fhir.outcome import FhirError, OutcomeIssue, not_found
from gateway.fhir.registry import ResourceDef
from gateway.fhir.search import plan_search
from gateway.policy.principal import ANONYMOUS
from gateway.policy.scopes import Interaction, Restriction
from gateway.policy.smart import ScopedAccess, ScopeDenied, authorize
from gateway.store.classes import ClassSpec


def insufficient_scope(exc: ScopeDenied) -> FhirError:
    """403 naming the scope (RFC 6750 §3.1 ``insufficient_scope``, and in the OperationOutcome)."""
    return FhirError(
        403,
        OutcomeIssue("forbidden", f"{exc.message} Missing scope: {exc.scope}"),
        headers={"WWW-Authenticate": f'Bearer realm="fhir", error="insufficient_scope", scope="{_quoted(exc.scope)}"'},
    )


def _quoted(value: str) -> str:
    """RFC 7230 quoted-string content: a restriction value may hold ``"`` or ``\\``."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def access(req: FhirRequest, resource_type: str, interaction: Interaction) -> ScopedAccess:
    """The policy's answer, as a FHIR 403 when the scopes fall short."""
    try:
        return authorize(req.principal, resource_type, interaction)
    except ScopeDenied as exc:
        raise insufficient_scope(exc) from exc


def scoped(req: FhirRequest, resource_type: str, interaction: Interaction | str) -> FhirRequest:
    """``req`` as an interaction on ``resource_type`` must see it (raises the 403 ``FhirError``)."""
    granted = access(req, resource_type, Interaction(interaction))
    if granted.principal is req.principal and granted.restrictions == req.restrictions:
        return req
    return replace(req, principal=granted.principal, restrictions=granted.restrictions)


def restriction_clause(
    ctx: FhirContext, rdef: ResourceDef, spec: ClassSpec, restrictions: tuple[Restriction, ...]
) -> ColumnElement[bool]:
    """The restrictions as SQL: each is its query's parameters ANDed, the restrictions ORed.

    Built with the search's own parameter clauses, so ``category=laboratory`` in a scope
    means exactly what it means in a search. A restriction this server cannot evaluate
    (an unknown parameter, a bad value) matches nothing: an unreadable scope grants no
    records rather than all of them.
    """
    options: list[ColumnElement[bool]] = []
    for restriction in restrictions:
        probe = FhirRequest("GET", ANONYMOUS, list(restriction.params), {"prefer": "handling=strict"})
        try:
            plan = plan_search(ctx, rdef, spec, probe)
        except FhirError:
            continue
        if plan.echo != list(restriction.params):
            continue  # a result parameter (_count, ...) is no restriction
        options.append(and_(*plan.where))
    return or_(*options) if options else false()


async def within_restrictions(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, object_id: str) -> None:
    """404 unless the current ``object_id`` matches the request's restrictions (if it has any).

    Instance reads (read, vread, history) judge the resource by its current state: a
    version of a resource that no longer matches is outside the scope too.
    """
    if req.restrictions is None:
        return
    spec = ctx.records.spec(rdef.class_name, req.principal)
    cond = and_(spec.pk == object_id, restriction_clause(ctx, rdef, spec, req.restrictions))
    async with ctx.records.db.read() as conn:
        found = (await conn.execute(select(spec.pk).where(cond).limit(1))).first()
    if found is None:
        raise not_found()


async def visible(ctx: FhirContext, rdef: ResourceDef, req: FhirRequest, object_id: str) -> None:
    """404 unless the caller may read ``object_id`` now (scoped principal and restrictions), without
    auditing a read: a transaction asks this of its GET entries before it writes anything."""
    await within_restrictions(ctx, rdef, req, object_id)
    try:
        await ctx.records.get(req.principal, rdef.class_name, object_id, audit=False)
    except NotFound:
        raise not_found() from None
