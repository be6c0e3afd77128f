"""Role membership, including Parse's inherited roles (``_Role.roles``)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.policy.acl import flatten
from gateway.policy.rules import record_acl
from gateway.store.ids import new_object_id
from gateway.store.models import Role, RoleRole, RoleUser, table_of
from gateway.store.objects import now

MAX_ROLE_DEPTH = 8

_roles = table_of(Role)
_role_users = table_of(RoleUser)
_role_roles = table_of(RoleRole)


async def user_roles(conn: AsyncConnection, user_id: str) -> frozenset[str]:
    """Names of the roles a user holds directly or through roles-within-roles.

    In Parse, if role A's ``roles`` relation contains role B, B's users also hold A.
    """
    direct = await conn.execute(
        select(_roles.c.objectId, _roles.c.name)
        .join(_role_users, _role_users.c.owningId == _roles.c.objectId)
        .where(_role_users.c.relatedId == user_id)
    )
    ids: dict[str, str] = {row.objectId: row.name for row in direct}
    frontier = set(ids)
    for _ in range(MAX_ROLE_DEPTH):
        if not frontier:
            break
        parents = await conn.execute(
            select(_roles.c.objectId, _roles.c.name)
            .join(_role_roles, _role_roles.c.owningId == _roles.c.objectId)
            .where(_role_roles.c.relatedId.in_(frontier))
        )
        frontier = set()
        for row in parents:
            if row.objectId not in ids:
                ids[row.objectId] = row.name
                frontier.add(row.objectId)
    return frozenset(ids.values())


async def ensure_role(conn: AsyncConnection, name: str) -> str:
    row = (await conn.execute(select(_roles.c.objectId).where(_roles.c.name == name))).first()
    if row is not None:
        return str(row.objectId)
    object_id = new_object_id()
    ts = now()
    acl = record_acl("_Role", {"name": name}, None)
    rperm, wperm = flatten(acl)
    await conn.execute(
        insert(_roles),
        {
            "objectId": object_id,
            "name": name,
            "createdAt": ts,
            "updatedAt": ts,
            "ACL": acl,
            "_rperm": rperm,
            "_wperm": wperm,
        },
    )
    return object_id


async def add_user(conn: AsyncConnection, role_name: str, user_id: str) -> None:
    role_id = await ensure_role(conn, role_name)
    exists = await conn.execute(
        select(_role_users.c.owningId).where((_role_users.c.owningId == role_id) & (_role_users.c.relatedId == user_id))
    )
    if exists.first() is None:
        await conn.execute(insert(_role_users), {"owningId": role_id, "relatedId": user_id})


async def set_users(conn: AsyncConnection, role_name: str, user_ids: set[str]) -> None:
    """Make a role's direct membership exactly ``user_ids`` (care-team roles are derived)."""
    role_id = await ensure_role(conn, role_name)
    await conn.execute(delete(_role_users).where(_role_users.c.owningId == role_id))
    if user_ids:
        await conn.execute(insert(_role_users), [{"owningId": role_id, "relatedId": u} for u in sorted(user_ids)])


async def role_user_ids(conn: AsyncConnection, role_name: str) -> list[str]:
    rows = await conn.execute(
        select(_role_users.c.relatedId)
        .join(_roles, _roles.c.objectId == _role_users.c.owningId)
        .where(_roles.c.name == role_name)
    )
    return [str(r.relatedId) for r in rows]
