"""``_include`` / ``_revinclude`` (FHIR R4 §3.1.1.5.4) and the policy every included resource passes.

An included resource is fetched with the same row filter a read uses
(``Records.filter_for``: ACL + patient bound), so a resource the caller could not read
is silently left out; and the resource *type* must pass :func:`admit` first — the one
function that applies type-level policy (SMART scopes through ``gateway.policy.smart``,
class permissions, administrators-only types) to whatever a search pulls in beyond its
own type, including the targets of chained parameters. :func:`row_filter` then turns its
answer into SQL (the record rules for the principal the scopes leave, AND the token's
query restrictions). Add any new rule there and every path obeys it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import Forbidden, NotFound
from gateway.fhir.context import FhirContext
from gateway.fhir.outcome import OutcomeIssue
from gateway.fhir.params import ReferenceParam, Via
from gateway.fhir.registry import RESOURCES, ResourceDef, references
from gateway.fhir.render import to_resources
from gateway.policy.clp import Op
from gateway.policy.principal import Principal
from gateway.policy.scopes import Interaction as ScopeInteraction
from gateway.policy.scopes import Restriction
from gateway.policy.smart import ScopeDenied, authorize
from gateway.records.service import Records
from gateway.store.classes import CLASSES, ClassSpec
from gateway.store.objects import Record, select_records

MAX_INCLUDED = 1000
"""Resources one ``_include``/``_revinclude`` value may add to a page (a warning says when more exist)."""


@dataclass(frozen=True, slots=True)
class Admitted:
    """What :func:`admit` grants for one resource type: whose record rules apply, and which restrictions."""

    principal: Principal
    restrictions: tuple[Restriction, ...] | None


def admit(
    records: Records,
    principal: Principal,
    rdef: ResourceDef,
    interaction: ScopeInteraction = ScopeInteraction.READ,
) -> Admitted | None:
    """May ``principal`` see resources of ``rdef``'s type pulled in by a search of another type
    (or by system-level history, which passes its own ``interaction``)?

    The SMART check asks for ``read`` by default: an included resource is one the client
    could have read by following the reference. Synchronous (chained parameters compile to SQL before
    any I/O), so ``Records.preload_clps`` must have run. ``None`` means "leave them all out".
    """
    if rdef.admin_only and principal.scopes is None and not principal.is_admin:
        return None  # as router._guard: a SMART token reaches such types through its scopes instead
    try:
        granted = authorize(principal, rdef.type, interaction)
    except ScopeDenied:
        return None
    try:
        records.check_loaded(rdef.class_name, Op.FIND, granted.principal)
    except (Forbidden, NotFound):
        return None
    return Admitted(granted.principal, granted.restrictions)


def row_filter(ctx: FhirContext, rdef: ResourceDef, spec: ClassSpec, admitted: Admitted) -> ColumnElement[bool]:
    """The rows of an admitted type the caller may see: the read rules, AND the token's restrictions."""
    cond = ctx.records.filter_for(spec, admitted.principal)
    if admitted.restrictions is not None:
        from gateway.fhir.scoping import restriction_clause  # scoping builds on search, which builds on this

        cond = and_(cond, restriction_clause(ctx, rdef, spec, admitted.restrictions))
    return cond


ITERATE_ROUNDS = 3
"""``:iterate`` follows references from included resources this many rounds deep at most."""


@dataclass(frozen=True, slots=True)
class Include:
    """One ``_include`` (``forward``) or ``_revinclude`` value, resolved against the registry."""

    source: ResourceDef
    param_name: str
    param: ReferenceParam
    target: str | None
    """``Type`` from ``Source:param:Type`` (None: every target of the parameter)."""
    forward: bool
    iterate: bool = False

    @property
    def text(self) -> str:
        suffix = f":{self.target}" if self.target else ""
        return f"{self.source.type}:{self.param_name}{suffix}"

    def applies_to(self, resource_type: str) -> bool:
        """Does this value start from resources of ``resource_type``?"""
        if self.forward:
            return self.source.type == resource_type
        return resource_type in self.param.targets and self.target in (None, resource_type)


def parse_include(rdef: ResourceDef, value: str, forward: bool, iterate: bool = False) -> Include | None:
    """``Source:param[:Type]`` -> :class:`Include`, or ``None`` when this server cannot follow it.

    Without ``:iterate`` the value must start from the searched type; with it, from any type
    (it is applied to whatever the other values included)."""
    parts = value.split(":")
    if len(parts) not in (2, 3):
        return None
    source = RESOURCES.get(parts[0])
    if source is None:
        return None
    param = references(source).get(parts[1])
    if param is None:
        return None
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target not in param.targets:
        return None
    inc = Include(source, parts[1], param, target, forward, iterate)
    if not iterate and not inc.applies_to(rdef.type):
        return None
    return inc


def _ids(rows: Sequence[Record], column: str, via: Via) -> list[str]:
    out: set[str] = set()
    for row in rows:
        value = row.get(column)
        if via is Via.JOIN and isinstance(value, list):
            out.update(str(v) for v in value if v)
        elif isinstance(value, str) and value:
            out.add(value)
    return sorted(out)


async def _follow(
    conn: AsyncConnection,
    ctx: FhirContext,
    principal: Principal,
    start: ResourceDef,
    rows: Sequence[Record],
    inc: Include,
    warnings: list[OutcomeIssue],
) -> list[tuple[ResourceDef, list[Record]]]:
    """What one include value adds for ``rows`` of type ``start``, under the policy of each type."""
    records = ctx.records
    found: list[tuple[ResourceDef, list[Record]]] = []
    if inc.forward:
        for path in inc.param.paths_to(inc.target):
            target = RESOURCES[path.target]
            admitted = admit(records, principal, target)
            if admitted is None:
                continue
            ids = _ids(rows, path.column, path.via)
            if not ids:
                continue
            spec = CLASSES[target.class_name]
            key = spec.table.c.user if path.via is Via.USER else spec.pk
            cond = and_(key.in_(ids), row_filter(ctx, target, spec, admitted))
            found.append((target, await select_records(conn, spec, cond, order=[spec.pk.asc()])))
        return found
    source = inc.source
    admitted = admit(records, principal, source)
    if admitted is None:
        return found
    spec = CLASSES[source.class_name]
    match_ids = [str(r["objectId"]) for r in rows]
    points = or_(*(p.matching(spec, match_ids) for p in inc.param.paths_to(start.type)))
    cond = and_(points, row_filter(ctx, source, spec, admitted))
    batch = await select_records(conn, spec, cond, order=[spec.pk.asc()], limit=MAX_INCLUDED + 1)
    if len(batch) > MAX_INCLUDED:
        batch = batch[:MAX_INCLUDED]
        warnings.append(
            OutcomeIssue(
                "too-costly",
                f"_revinclude={inc.text} was cut at {MAX_INCLUDED} resources; use a smaller _count.",
                severity="warning",
            )
        )
    found.append((source, batch))
    return found


async def included(
    conn: AsyncConnection,
    ctx: FhirContext,
    principal: Principal,
    rdef: ResourceDef,
    rows: Sequence[Record],
    wanted: Sequence[Include],
) -> tuple[list[dict[str, Any]], list[OutcomeIssue]]:
    """The resources ``wanted`` adds to a page of ``rows``, each once, none that is already a match.

    Round one applies every value that starts from the searched type to the matches; each
    further round (``:iterate`` values only, at most :data:`ITERATE_ROUNDS`) applies them to
    what the round before added."""
    seen = {(rdef.type, str(r["objectId"])) for r in rows}
    warnings: list[OutcomeIssue] = []
    if not rows:
        return [], []
    frontier: dict[str, tuple[ResourceDef, list[Record]]] = {rdef.type: (rdef, list(rows))}
    added: list[tuple[ResourceDef, list[Record]]] = []
    for round_no in range(1 + ITERATE_ROUNDS):
        fresh: dict[str, tuple[ResourceDef, list[Record]]] = {}
        for inc in wanted:
            if round_no > 0 and not inc.iterate:
                continue
            for start, start_rows in frontier.values():
                if not inc.applies_to(start.type):
                    continue
                for target, batch in await _follow(conn, ctx, principal, start, start_rows, inc, warnings):
                    new = [r for r in batch if (target.type, str(r["objectId"])) not in seen]
                    seen.update((target.type, str(r["objectId"])) for r in new)
                    if new:
                        fresh.setdefault(target.type, (target, []))[1].extend(new)
        if not fresh:
            break
        added += fresh.values()
        frontier = fresh
    out: list[dict[str, Any]] = []
    for target, batch in added:
        out += await to_resources(conn, ctx, target, batch)
    return out, warnings
