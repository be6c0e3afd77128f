"""Class-level permissions (Parse CLP): which principals may do which operation on a class.

Defaults encode DESIGN.md; ``/parse/schemas`` may store overrides, but the rules in
``IMMUTABLE`` hold whatever is stored: AuditLog is never writable through any API,
master key included, and nobody creates providers or admins by signing up.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from gateway.errors import Forbidden, NotFound
from gateway.policy.principal import PUBLIC, Principal, Role, role_perm


class Op(StrEnum):
    GET = "get"
    FIND = "find"
    COUNT = "count"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ADD_FIELD = "addField"


CLP = dict[str, Any]

ADMIN = role_perm(Role.ADMIN)
PROVIDER = role_perm(Role.PROVIDER)
PATIENT = role_perm(Role.PATIENT)
SIGNED_IN = {"requiresAuthentication": True}


def _clp(
    read: Mapping[str, bool], create: Mapping[str, bool], update: Mapping[str, bool], delete: Mapping[str, bool]
) -> CLP:
    return {
        "get": dict(read),
        "find": dict(read),
        "count": dict(read),
        "create": dict(create),
        "update": dict(update),
        "delete": dict(delete),
        "addField": {},
        "protectedFields": {},
    }


DEFAULT_CLPS: Mapping[str, CLP] = {
    "_User": _clp(SIGNED_IN, {PUBLIC: True}, SIGNED_IN, SIGNED_IN),
    "_Session": _clp(SIGNED_IN, {}, SIGNED_IN, SIGNED_IN),
    "_Role": _clp(SIGNED_IN, {ADMIN: True}, {ADMIN: True}, {ADMIN: True}),
    "PatientProfile": _clp(SIGNED_IN, {ADMIN: True, PROVIDER: True}, SIGNED_IN, {ADMIN: True}),
    "ProviderProfile": _clp(SIGNED_IN, {ADMIN: True}, {ADMIN: True}, {ADMIN: True}),
    "LabResult": _clp(
        SIGNED_IN, {ADMIN: True, PROVIDER: True}, {ADMIN: True, PROVIDER: True}, {ADMIN: True, PROVIDER: True}
    ),
    "TreatmentPlan": _clp(SIGNED_IN, {ADMIN: True, PROVIDER: True}, SIGNED_IN, {ADMIN: True, PROVIDER: True}),
    "Message": _clp(SIGNED_IN, SIGNED_IN, SIGNED_IN, {ADMIN: True}),
    "Appointment": _clp(SIGNED_IN, {ADMIN: True, PROVIDER: True}, SIGNED_IN, {ADMIN: True, PROVIDER: True}),
    "AuditLog": _clp(SIGNED_IN, {}, {}, {}),
}

IMMUTABLE: Mapping[str, frozenset[Op]] = {
    "AuditLog": frozenset({Op.CREATE, Op.UPDATE, Op.DELETE, Op.ADD_FIELD}),
}
"""Operations refused to every client, the master key included."""


def effective_clp(class_name: str, stored: Mapping[str, Any] | None) -> CLP:
    clp = dict(DEFAULT_CLPS.get(class_name, _clp({}, {}, {}, {})))
    if stored:
        clp.update(stored)
    return clp


def check(class_name: str, op: Op, principal: Principal, clp: Mapping[str, Any]) -> None:
    """Raise the error Parse Server gives when the CLP refuses ``op``.

    Parse answers 119 "Permission denied" for refused class permissions, but a class
    that requires sign-in answers a caller without a session with 101 (as if empty).
    """
    if op in IMMUTABLE.get(class_name, frozenset()):
        raise Forbidden(f"Permission denied for action {op.value} on class {class_name}.")
    if principal.is_master:
        return
    rule = clp.get(op.value) or {}
    perms = principal.perms
    if any(rule.get(p) for p in perms):
        return
    if rule.get("requiresAuthentication"):
        if principal.is_user:
            return
        raise NotFound("Permission denied, user needs to be authenticated.")
    raise Forbidden(f"Permission denied for action {op.value} on class {class_name}.")
