"""SMART scopes AND the record rules: the one question every FHIR interaction asks first.

DESIGN.md "Authorization": on the FHIR door a SMART token reaches what its scopes allow
*and* what the record rules allow its principal. :func:`authorize` answers, for one
resource type and interaction, either :class:`ScopeDenied` (the door's 403 naming the
missing scope) or a :class:`ScopedAccess`: the principal the record rules should see
(confined to the launch patient's compartment for a ``patient/`` grant) and the v2 query
restrictions the door must add to what it reads. It is pure (no I/O) so the FHIR router,
``_include``/``_revinclude`` targets and Bundle entries all call the same function.

Choices (documented here because tests pin them):

* Contexts by principal: a client_credentials principal (kind SYSTEM) honours only
  ``system/`` scopes; a user's token honours ``user/`` and ``patient/`` scopes and never
  ``system/`` ones, so a scope string can never lift a user to the master-like system
  level.
* ``system/`` grants reach every record of the type (SMART Backend Services); the
  record-level rules of a system principal are the master's, its scopes limit types and
  interactions.
* ``patient/`` grants confine the principal to one compartment: the token's launch
  patient, else a patient user's own patient. Without either there is nothing the grant
  can reach, so it is refused like a missing scope. Creating a Patient is never within a
  compartment.
* When several contexts cover one request, the widest unrestricted one applies
  (system, user, patient); when all are restricted, the widest restricted one. This
  never grants more than one of the scopes grants on its own.
* v2 query restrictions narrow reads and searches (the door ANDs them with the query and
  answers 404 for a single resource outside them). Writes under them are judged by the
  door in one database transaction: an update or delete needs the resource inside the
  restriction now (else 404), a create or update must leave it inside (else 403, rolled
  back).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.policy.principal import Principal, PrincipalKind
from gateway.policy.scopes import Grant, Interaction, Permission, Restriction, ScopeContext

_CONTEXTS_OF: dict[PrincipalKind, frozenset[ScopeContext]] = {
    PrincipalKind.SYSTEM: frozenset({ScopeContext.SYSTEM}),
    PrincipalKind.USER: frozenset({ScopeContext.USER, ScopeContext.PATIENT}),
}


class ScopeDenied(Exception):
    """The token's scopes do not cover the request; ``scope`` is what it would need."""

    def __init__(self, scope: str, message: str) -> None:
        super().__init__(message)
        self.scope = scope
        self.message = message


@dataclass(frozen=True, slots=True)
class ScopedAccess:
    principal: Principal
    """Who the record rules see: the caller, confined to a compartment for a ``patient/`` grant."""
    context: ScopeContext | None = None
    """The scope context that granted the request; None when the caller is not scope-limited."""
    restrictions: tuple[Restriction, ...] | None = None
    """v2 query restrictions (OR-ed) the door must apply; None = none."""


def _compartment(principal: Principal) -> str | None:
    if principal.patient_context:
        return principal.patient_context
    return principal.own_patient_id if principal.is_patient else None


def authorize(principal: Principal, resource_type: str, interaction: Interaction) -> ScopedAccess:
    """What ``principal`` may reach for ``interaction`` on ``resource_type`` (raises :class:`ScopeDenied`).

    Principals without scopes (a Parse session, the master key, an HL7 feed) pass through
    unchanged: their record rules alone decide.
    """
    scopes = principal.scopes
    if scopes is None:
        return ScopedAccess(principal)
    allowed = _CONTEXTS_OF.get(principal.kind, frozenset())
    grants = [g for g in scopes.grants(resource_type, interaction) if g.context in allowed]
    if not grants:
        raise ScopeDenied(
            scopes.missing_scope(resource_type, interaction),
            f"The access token's scopes do not allow {interaction.value} on {resource_type}.",
        )
    grant: Grant = next((g for g in grants if g.restrictions is None), grants[0])
    if grant.context is not ScopeContext.PATIENT:
        return ScopedAccess(principal, grant.context, grant.restrictions)
    compartment = _compartment(principal)
    if compartment is None:
        raise ScopeDenied(
            "launch/patient", f"patient/ scopes need a patient in context to {interaction.value} {resource_type}."
        )
    if resource_type == "Patient" and interaction.permission is Permission.CREATE:
        raise ScopeDenied(
            f"user/{resource_type}.c", "A patient/ scope cannot create a Patient outside its compartment."
        )
    return ScopedAccess(replace(principal, compartment=compartment), grant.context, grant.restrictions)
