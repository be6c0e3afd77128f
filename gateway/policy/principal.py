"""Who is asking: the one identity object every door builds and every policy check reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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


def role_perm(name: str) -> str:
    return f"role:{name}"


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """Where a request came from, recorded in every audit entry."""

    source_address: str | None = None
    request_id: str | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    user_id: str | None = None
    roles: frozenset[str] = frozenset()
    session_id: str | None = None
    name: str | None = None
    """Display name for system actors (``hl7:LAB1``, ``cli``); the username for users."""
    info: RequestInfo = field(default_factory=RequestInfo)

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
        keys = {PUBLIC, *(role_perm(r) for r in self.roles)}
        if self.user_id:
            keys.add(self.user_id)
        return frozenset(keys)

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
