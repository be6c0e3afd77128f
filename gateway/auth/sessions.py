"""Parse sessions: opaque ``r:`` tokens, stored only as SHA-256 digests.

A leaked database therefore leaks no usable token; a token is shown to its owner
once, at sign-up or log-in (and echoed on ``/users/me`` to the bearer who sent it).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.auth.roles import user_roles
from gateway.errors import Invalid, ParseCode
from gateway.policy.acl import flatten
from gateway.policy.principal import Principal, PrincipalKind, RequestInfo
from gateway.policy.rules import record_acl
from gateway.store import hotpath
from gateway.store.ids import new_object_id
from gateway.store.models import PatientProfile, Session, User, table_of
from gateway.store.objects import now

_sessions = table_of(Session)
_users = table_of(User)
_patients = table_of(PatientProfile)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "r:" + secrets.token_hex(16)


class InvalidSession(Invalid):
    def __init__(self) -> None:
        super().__init__("Invalid session token", parse_code=ParseCode.INVALID_SESSION_TOKEN)


async def create_session(
    conn: AsyncConnection, user_id: str, *, days: int, action: str, installation_id: str | None = None
) -> tuple[str, dict[str, Any]]:
    token = new_token()
    ts = now()
    row: dict[str, Any] = {
        "objectId": new_object_id(),
        "user": user_id,
        "createdAt": ts,
        "updatedAt": ts,
        "expiresAt": ts + timedelta(days=days),
        "createdWith": {"action": action, "authProvider": "password"},
        "installationId": installation_id,
        "restricted": False,
        "_token_hash": token_digest(token),
    }
    acl = record_acl("_Session", row, None)
    row["ACL"] = acl
    row["_rperm"], row["_wperm"] = flatten(acl)
    await conn.execute(insert(_sessions), row)
    return token, row


async def resolve(conn: AsyncConnection, token: object, info: RequestInfo) -> Principal:
    """Token -> principal; any malformed, unknown, expired or revoked token is Parse's 209."""
    if not isinstance(token, str) or not token or len(token) > 256:
        raise InvalidSession()
    found = await hotpath.session_by_token(conn, token_digest(token))
    if found is None or found[2] <= now():
        raise InvalidSession()
    session_id, user_id, _expires, username, own_patient, roles = found
    if roles is None:
        roles = await user_roles(conn, user_id)
    return Principal(
        kind=PrincipalKind.USER,
        user_id=user_id,
        roles=roles,
        session_id=session_id,
        name=username,
        info=info,
        own_patient_id=own_patient,
    )


async def revoke(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(delete(_sessions).where(_sessions.c.objectId == session_id))


async def revoke_all_for_user(conn: AsyncConnection, user_id: str, except_session: str | None = None) -> None:
    cond = _sessions.c.user == user_id
    if except_session:
        cond = cond & (_sessions.c.objectId != except_session)
    await conn.execute(delete(_sessions).where(cond))
