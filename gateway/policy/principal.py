"""Who is asking: the one identity object every door builds and every policy check reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from gateway.policy.scopes import SmartScopes


class Role(StrEnum):
    """Built-in roles (DESIGN.md "Authorization"). Providers and admins are never self-assigned."""

    PATIENT = "patient"
    PROVIDER = "provider"
    ADMIN = "admin"


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    MASTER = "master"
    SYSTEM = "system"
    """A named system actor (an HL7 feed, the CLI seeding data)."""


PUBLIC = "*"
CARE_TEAM_PREFIX = "careTeam_"


def role_perm(name: str) -> str:
    return f"role:{name}"


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """Where a request came from, recorded in every audit entry."""

    source_address: str | None = None
    request_id: str | None = None
    client_id: str | None = None


@lru_cache(maxsize=4096)
def _perms(roles: frozenset[str], user_id: str | None) -> frozenset[str]:
    """Memoized: every row check of a page asks for the same principal's perms."""
    keys = {PUBLIC, *(role_perm(r) for r in roles)}
    if user_id:
        keys.add(user_id)
    return frozenset(keys)


@lru_cache(maxsize=4096)
def _patient_ids(roles: frozenset[str], own_patient_id: str | None, compartment: str | None) -> frozenset[str]:
    """Memoized like ``_perms``: a page's row checks and included objects ask it per row."""
    ids = {r[len(CARE_TEAM_PREFIX) :] for r in roles if r.startswith(CARE_TEAM_PREFIX)}
    if own_patient_id:
        ids.add(own_patient_id)
    if compartment is not None:
        ids &= {compartment}
    return frozenset(ids)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    user_id: str | None = None
    roles: frozenset[str] = frozenset()
    session_id: str | None = None
    name: str | None = None
    """Display name for system actors (``hl7:LAB1``, ``cli``); the username for users."""
    info: RequestInfo = field(default_factory=RequestInfo)
    own_patient_id: str | None = None
    """The PatientProfile this user activated, if any."""
    scopes: SmartScopes | None = None
    """SMART scopes of the access token; None = not scope-limited (Parse session, master key)."""
    patient_context: str | None = None
    """The launch patient of a SMART token: ``patient/`` scopes reach only this compartment."""
    fhir_user: str | None = None
    """``Patient/<id>`` or ``Practitioner/<id>`` for a SMART token with ``fhirUser``."""
    compartment: str | None = None
    """Set only by ``gateway.policy.smart.authorize`` for a ``patient/`` grant: every record
    rule is further bounded to this patient's compartment (see :attr:`patient_ids`)."""

    @property
    def is_master(self) -> bool:
        return self.kind in (PrincipalKind.MASTER, PrincipalKind.SYSTEM)

    @property
    def is_user(self) -> bool:
        return self.kind is PrincipalKind.USER and self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return self.is_master or Role.ADMIN in self.roles

    @property
    def is_provider(self) -> bool:
        return Role.PROVIDER in self.roles

    @property
    def is_patient(self) -> bool:
        return Role.PATIENT in self.roles

    @property
    def perms(self) -> frozenset[str]:
        """The ACL keys this principal matches: ``*``, its user id, and ``role:<name>`` per role."""
        return _perms(self.roles, self.user_id)

    @property
    def patient_ids(self) -> frozenset[str] | None:
        """Patients whose records this principal can reach at all; None means no such bound (admin).

        Every non-admin path to a patient's records runs through the patient's own user
        or the ``careTeam_<patientId>`` role, so this set bounds the ACL and lets SQL use
        the ``patient`` indexes instead of scanning every row's ACL.
        """
        if self.is_admin:
            return None if self.compartment is None else frozenset({self.compartment})
        return _patient_ids(self.roles, self.own_patient_id, self.compartment)

    @property
    def actor_name(self) -> str:
        if self.name:
            return self.name
        if self.user_id:
            return f"user:{self.user_id}"
        return self.kind.value


ANONYMOUS = Principal(kind=PrincipalKind.ANONYMOUS)


def master(info: RequestInfo | None = None, name: str = "master-key") -> Principal:
    return Principal(kind=PrincipalKind.MASTER, name=name, info=info or RequestInfo())


def system(name: str, info: RequestInfo | None = None) -> Principal:
    return Principal(kind=PrincipalKind.SYSTEM, name=name, info=info or RequestInfo())
