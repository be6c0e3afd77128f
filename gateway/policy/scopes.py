"""SMART on FHIR scopes: parse them once, ask them one question per interaction.

Pure (no I/O): the authorization server uses :func:`parse_scopes` and
:func:`granted_subset` to decide what a client may get; the FHIR door asks the
parsed :class:`SmartScopes` of a token whether it covers a resource type and an
interaction (and under which v2 query restriction), in addition to -- never instead
of -- the record rules (DESIGN.md "Authorization").

Grammar (SMART App Launch 2.x §"Scopes for requesting clinical data"):

* v1: ``<context>/<type>.<read|write|*>`` -- ``read`` = ``rs``, ``write`` = ``cud``,
  ``*`` = ``cruds``;
* v2: ``<context>/<type>.<letters>[?<query>]`` -- letters a non-empty subsequence of
  ``c r u d s`` in that order; the query (``category=laboratory``,
  ``category=<system>|<code>``, several joined by ``&``) narrows the records the scope
  reaches;
* ``<context>`` is ``patient``, ``user`` or ``system``; ``<type>`` is a resource type or
  ``*``;
* plus the non-resource scopes in :data:`NON_RESOURCE_SCOPES`.

Anything else is a ``ValueError`` naming the bad scope, so a typo never silently
grants or silently drops access.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl


class ScopeContext(StrEnum):
    """Whose records a resource scope reaches (the part before the ``/``)."""

    PATIENT = "patient"
    """The launch patient's compartment only."""
    USER = "user"
    """Whatever the signed-in user may see under the record rules."""
    SYSTEM = "system"
    """A back-end client acting for itself (client_credentials)."""


class Permission(StrEnum):
    """SMART v2 permission letters, declared in their required order."""

    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


PERMISSION_ORDER = "cruds"
V1_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "read": frozenset({Permission.READ, Permission.SEARCH}),
    "write": frozenset({Permission.CREATE, Permission.UPDATE, Permission.DELETE}),
    "*": frozenset(Permission),
}


class Interaction(StrEnum):
    """FHIR ``TypeRestfulInteraction`` codes (plus system-level ones) the door serves."""

    READ = "read"
    VREAD = "vread"
    HISTORY_INSTANCE = "history-instance"
    HISTORY_TYPE = "history-type"
    HISTORY_SYSTEM = "history-system"
    SEARCH_TYPE = "search-type"
    SEARCH_SYSTEM = "search-system"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"

    @property
    def permission(self) -> Permission:
        """The SMART permission an interaction needs: reads of one resource (vread and its
        history too) need ``r``; anything that lists many needs ``s``."""
        return _PERMISSION_OF[self]


_PERMISSION_OF: dict[Interaction, Permission] = {
    Interaction.READ: Permission.READ,
    Interaction.VREAD: Permission.READ,
    Interaction.HISTORY_INSTANCE: Permission.READ,
    Interaction.HISTORY_TYPE: Permission.SEARCH,
    Interaction.HISTORY_SYSTEM: Permission.SEARCH,
    Interaction.SEARCH_TYPE: Permission.SEARCH,
    Interaction.SEARCH_SYSTEM: Permission.SEARCH,
    Interaction.CREATE: Permission.CREATE,
    Interaction.UPDATE: Permission.UPDATE,
    Interaction.PATCH: Permission.UPDATE,
    Interaction.DELETE: Permission.DELETE,
}

NON_RESOURCE_SCOPES = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
)
"""Identity, launch-context and refresh-token scopes; kept as a set, they grant no records."""

_RESOURCE_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})\.(?P<perms>read|write|\*|[cruds]{1,5})"
    r"(?:\?(?P<query>.+))?$"
)
_QUERY_NAME = re.compile(r"^[a-z_][a-z0-9\-_]*(?::[a-z\-]+)?$")


@dataclass(frozen=True, slots=True)
class Restriction:
    """A v2 query restriction: every ``(name, value)`` pair must hold (the ``&`` of a query)."""

    params: tuple[tuple[str, str], ...]

    @property
    def query(self) -> str:
        return "&".join(f"{k}={v}" for k, v in self.params)

    def narrowed(self, other: Restriction) -> Restriction:
        """The restriction that holds when both hold (the intersection of two scopes)."""
        merged = list(self.params)
        merged.extend(p for p in other.params if p not in merged)
        return Restriction(tuple(merged))


@dataclass(frozen=True, slots=True)
class ResourceScope:
    context: ScopeContext
    resource_type: str
    """A FHIR resource type or ``*``."""
    permissions: frozenset[Permission]
    restriction: Restriction | None = None
    v1: bool = False
    """Written in v1 syntax; kept so a granted scope is echoed back the way it was asked."""

    def covers_type(self, resource_type: str) -> bool:
        return self.resource_type in ("*", resource_type)

    def __str__(self) -> str:
        return f"{self.context}/{self.resource_type}.{self._perm_text()}" + (
            f"?{self.restriction.query}" if self.restriction else ""
        )

    def _perm_text(self) -> str:
        if self.v1 and self.restriction is None:
            for word, perms in V1_PERMISSIONS.items():
                if perms == self.permissions:
                    return word
        return "".join(p for p in PERMISSION_ORDER if Permission(p) in self.permissions)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token's scopes allow for one (resource type, permission)."""

    context: ScopeContext
    restrictions: tuple[Restriction, ...] | None
    """None: every record the context reaches; else the records matching ANY restriction."""


@dataclass(frozen=True, slots=True)
class SmartScopes:
    """A parsed, immutable scope set. Equality ignores the order the scopes were written in."""

    resource: frozenset[ResourceScope] = frozenset()
    other: frozenset[str] = frozenset()

    @property
    def contexts(self) -> frozenset[ScopeContext]:
        return frozenset(s.context for s in self.resource)

    def matching(self, resource_type: str, interaction: Interaction | Permission) -> list[ResourceScope]:
        perm = interaction.permission if isinstance(interaction, Interaction) else interaction
        return [s for s in self.resource if s.covers_type(resource_type) and perm in s.permissions]

    def allows(self, resource_type: str, interaction: Interaction | Permission) -> bool:
        """Does any scope (any context, restricted or not) cover this type and interaction?"""
        return bool(self.matching(resource_type, interaction))

    def grants(self, resource_type: str, interaction: Interaction | Permission) -> list[Grant]:
        """Per context, what the scopes allow: one :class:`Grant` per context that covers the
        request, widest context first (system, user, patient). Within one context the
        restrictions of its scopes are OR-ed; one unrestricted scope makes the grant unrestricted."""
        out: list[Grant] = []
        for context in (ScopeContext.SYSTEM, ScopeContext.USER, ScopeContext.PATIENT):
            found = [s for s in self.matching(resource_type, interaction) if s.context is context]
            if not found:
                continue
            if any(s.restriction is None for s in found):
                out.append(Grant(context, None))
            else:
                restrictions = tuple(sorted({s.restriction for s in found if s.restriction}, key=lambda r: r.query))
                out.append(Grant(context, restrictions))
        return out

    def restrictions(self, resource_type: str, interaction: Interaction | Permission) -> tuple[Restriction, ...] | None:
        """The v2 query restrictions (OR-ed) over every context; None = unrestricted (or not allowed:
        ask :meth:`allows` first)."""
        found = self.matching(resource_type, interaction)
        if not found or any(s.restriction is None for s in found):
            return None
        return tuple(sorted({s.restriction for s in found if s.restriction}, key=lambda r: r.query))

    def missing_scope(self, resource_type: str, interaction: Interaction | Permission) -> str:
        """The scope to name in a 403: the token's own context (patient before user before
        system) and syntax (v1 when every resource scope it holds is v1)."""
        perm = interaction.permission if isinstance(interaction, Interaction) else interaction
        context = next(
            (c for c in (ScopeContext.PATIENT, ScopeContext.USER, ScopeContext.SYSTEM) if c in self.contexts),
            ScopeContext.PATIENT if "launch/patient" in self.other else ScopeContext.USER,
        )
        if self.resource and all(s.v1 for s in self.resource):
            word = "read" if perm in (Permission.READ, Permission.SEARCH) else "write"
            return f"{context}/{resource_type}.{word}"
        return f"{context}/{resource_type}.{perm}"

    def __str__(self) -> str:
        return " ".join(sorted(self.other) + sorted(str(s) for s in self.resource))


def _parse_query(scope: str, query: str) -> Restriction:
    params: list[tuple[str, str]] = []
    for pair in query.split("&"):
        name, sep, _ = pair.partition("=")
        if not sep:
            raise ValueError(f"invalid scope {scope!r}: query part {pair!r} has no '='")
        parsed = parse_qsl(pair, keep_blank_values=True, strict_parsing=True)
        value = parsed[0][1]
        if not _QUERY_NAME.match(name) or not value:
            raise ValueError(f"invalid scope {scope!r}: bad query restriction {pair!r}")
        params.append((name, value))
    return Restriction(tuple(params))


def parse_scope(scope: str) -> ResourceScope | str:
    """One scope: a :class:`ResourceScope`, or the name of a non-resource scope."""
    if scope in NON_RESOURCE_SCOPES:
        return scope
    m = _RESOURCE_SCOPE.match(scope)
    if m is None:
        raise ValueError(f"invalid scope {scope!r}")
    perms_text, query = m["perms"], m["query"]
    v1 = perms_text in V1_PERMISSIONS
    if v1:
        if query is not None:
            raise ValueError(f"invalid scope {scope!r}: query restrictions need v2 permission letters")
        perms = V1_PERMISSIONS[perms_text]
    else:
        if "".join(sorted(perms_text, key=PERMISSION_ORDER.index)) != perms_text or len(set(perms_text)) != len(
            perms_text
        ):
            raise ValueError(f"invalid scope {scope!r}: permissions must be a subsequence of 'cruds'")
        perms = frozenset(Permission(c) for c in perms_text)
    restriction = _parse_query(scope, query) if query is not None else None
    return ResourceScope(ScopeContext(m["context"]), m["type"], perms, restriction, v1)


def parse_scopes(text: str) -> SmartScopes:
    """Parse a space-separated scope string (OAuth 2 ``scope``). Raises ``ValueError`` naming
    the first bad scope."""
    resource: set[ResourceScope] = set()
    other: set[str] = set()
    for word in text.split():
        parsed = parse_scope(word)
        if isinstance(parsed, str):
            other.add(parsed)
        else:
            resource.add(parsed)
    return SmartScopes(frozenset(resource), frozenset(other))


def _intersect(asked: ResourceScope, allowed: ResourceScope) -> ResourceScope | None:
    if asked.context is not allowed.context:
        return None
    if asked.resource_type == "*":
        rtype = allowed.resource_type
    elif allowed.covers_type(asked.resource_type):
        rtype = asked.resource_type
    else:
        return None
    perms = asked.permissions & allowed.permissions
    if not perms:
        return None
    if asked.restriction and allowed.restriction:
        restriction: Restriction | None = asked.restriction.narrowed(allowed.restriction)
    else:
        restriction = asked.restriction or allowed.restriction
    return ResourceScope(asked.context, rtype, perms, restriction, asked.v1 and restriction is None)


def granted_subset(requested: SmartScopes, allowed: SmartScopes | Iterable[SmartScopes]) -> SmartScopes:
    """What a client may get: every requested scope cut down to what ``allowed`` covers
    (same context; ``*`` narrowed to the allowed type; permissions and restrictions
    intersected); non-resource scopes kept when allowed. Never more than either side.

    ``allowed`` may be several scope sets (say, the client's registration and what the
    user's role may hold); the result is within all of them.
    """
    limits = [allowed] if isinstance(allowed, SmartScopes) else list(allowed)
    current = requested
    for limit in limits:
        resource: set[ResourceScope] = set()
        for asked in current.resource:
            for allow in limit.resource:
                got = _intersect(asked, allow)
                if got is not None:
                    resource.add(got)
        current = SmartScopes(frozenset(_drop_subsumed(resource)), current.other & limit.other)
    return current


def _drop_subsumed(scopes: set[ResourceScope]) -> set[ResourceScope]:
    """Drop scopes another scope in the set fully covers (so the granted string stays short)."""

    def covers(a: ResourceScope, b: ResourceScope) -> bool:
        return (
            a is not b
            and a.context is b.context
            and a.covers_type(b.resource_type)
            and a.permissions >= b.permissions
            and (a.restriction is None or a.restriction == b.restriction)
        )

    def drops(o: ResourceScope, s: ResourceScope) -> bool:
        # Two scopes that cover each other (``.read`` and ``.rs``) keep one: the shorter text.
        return covers(o, s) and (not covers(s, o) or (len(str(o)), str(o)) < (len(str(s)), str(s)))

    return {s for s in scopes if not any(drops(o, s) for o in scopes)}
