"""Creating users: shared by sign-up, the CLI and demo seeding."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.auth.passwords import Passwords
from gateway.errors import Conflict, ParseCode
from gateway.policy.acl import flatten
from gateway.policy.rules import record_acl
from gateway.store.ids import new_object_id
from gateway.store.models import User, table_of
from gateway.store.objects import now

_users = table_of(User)


async def ensure_unique(conn: AsyncConnection, username: str, email: str | None) -> None:
    if (await conn.execute(select(_users.c.objectId).where(_users.c.username == username))).first():
        raise Conflict("Account already exists for this username.", parse_code=ParseCode.USERNAME_TAKEN)
    if email and (await conn.execute(select(_users.c.objectId).where(_users.c.email == email))).first():
        raise Conflict("Account already exists for this email address.", parse_code=ParseCode.EMAIL_TAKEN)


async def create_user(
    conn: AsyncConnection, passwords: Passwords, username: str, password: str, email: str | None
) -> dict[str, Any]:
    await ensure_unique(conn, username, email)
    ts = now()
    row: dict[str, Any] = {
        "objectId": new_object_id(),
        "username": username,
        "email": email,
        "emailVerified": False if email else None,
        "_hashed_password": await passwords.hash(password),
        "createdAt": ts,
        "updatedAt": ts,
    }
    acl = record_acl("_User", row, None)
    row["ACL"] = acl
    row["_rperm"], row["_wperm"] = flatten(acl)
    await conn.execute(insert(_users), row)
    return row
