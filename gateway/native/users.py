"""Sign-up, log-in, log-out and the current user (``/users``, ``/login``, ``/logout``, ``/users/me``).

Nobody becomes a provider or admin by signing up: a new user holds no role until
staff link them (providers, admins) or they activate portal access (patients).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.audit import AuditAction, AuditEntry, append
from gateway.auth import sessions
from gateway.auth.users import create_user
from gateway.errors import Conflict, Forbidden, Invalid, NotFound, ParseCode
from gateway.native import objects
from gateway.native.codec import iso
from gateway.native.context import NativeContext, NativeResponse
from gateway.native.dispatch import route
from gateway.native.encode import to_json
from gateway.native.request import NativeRequest
from gateway.policy.principal import Principal, PrincipalKind
from gateway.store.classes import CLASSES
from gateway.store.models import User, table_of
from gateway.store.objects import get_record

_users = table_of(User)
USER = CLASSES["_User"]
SIGNUP_FIELDS = frozenset({"username", "password", "email"})
MAX_USERNAME = 255


def _user_json(record: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    out = to_json(USER, record)
    if token is not None:
        out["sessionToken"] = token
    return out


def _credential(body: dict[str, Any], options: dict[str, Any], name: str) -> Any:
    return body.get(name, options.get(name))


@route("POST", "users")
async def sign_up(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    body = dict(req.body)
    body.pop("ACL", None)
    username, password, email = body.get("username"), body.get("password"), body.get("email")
    if not isinstance(username, str) or not username.strip() or len(username) > MAX_USERNAME:
        raise Invalid("bad or missing username", parse_code=ParseCode.USERNAME_MISSING)
    if not isinstance(password, str) or not password:
        raise Invalid("password is required", parse_code=ParseCode.PASSWORD_MISSING)
    if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 255):
        raise Invalid("Email address format is invalid.", parse_code=ParseCode.INVALID_EMAIL_ADDRESS)
    extra = set(body) - SIGNUP_FIELDS
    if "emailVerified" in extra:
        raise Forbidden("Clients aren't allowed to manually update email verification.")
    for key in ("objectId", "createdAt", "updatedAt", "sessionToken", "authData"):
        if key in extra:
            raise Invalid(f"{key} is an invalid field name.", parse_code=ParseCode.INVALID_KEY_NAME)
    if extra:
        raise Forbidden(f"Permission denied for action addField on class _User: {sorted(extra)[0]} is not a field.")
    try:
        async with ctx.db.write() as conn:
            row = await create_user(conn, ctx.passwords, username, password, email)
            token, _ = await sessions.create_session(
                conn,
                row["objectId"],
                days=ctx.settings.session_days,
                action="signup",
                installation_id=req.installation_id if isinstance(req.installation_id, str) else None,
            )
            actor = Principal(kind=PrincipalKind.USER, user_id=row["objectId"], name=username, info=req.info)
            await append(conn, AuditEntry(AuditAction.SIGNUP, actor, "_User", row["objectId"]))
    except IntegrityError as exc:
        raise Conflict("Account already exists for this username.", parse_code=ParseCode.USERNAME_TAKEN) from exc
    ts = row["createdAt"]
    del principal
    return NativeResponse(
        {"objectId": row["objectId"], "createdAt": iso(ts), "sessionToken": token},
        status=201,
        headers={"Location": f"{ctx.settings.base_url}/parse/users/{row['objectId']}"},
    )


async def _log_in(ctx: NativeContext, req: NativeRequest) -> NativeResponse:
    await ctx.principal(req)
    username = _credential(req.body, req.options, "username")
    email = _credential(req.body, req.options, "email")
    password = _credential(req.body, req.options, "password")
    if not isinstance(username, str) and not isinstance(email, str):
        raise Invalid("username/email is required.", parse_code=ParseCode.USERNAME_MISSING)
    if not isinstance(password, str) or not password:
        raise Invalid("password is required.", parse_code=ParseCode.PASSWORD_MISSING)
    cond = _users.c.username == username if isinstance(username, str) else _users.c.email == email
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(_users).where(cond))).mappings().first()
    ok = await ctx.passwords.verify(row["_hashed_password"] if row else None, password)
    async with ctx.db.write() as conn:
        if not ok or row is None:
            # The attempted account names the actor (a brute-force run shows up), never the password.
            attempted = str(username if isinstance(username, str) else email)[:200]
            actor = Principal(kind=PrincipalKind.ANONYMOUS, user_id=None, name=f"login:{attempted}", info=req.info)
            target = row["objectId"] if row is not None else None
            await append(conn, AuditEntry(AuditAction.LOGIN_FAILED, actor, "_User", target, outcome="failure"))
            failed = True
        else:
            failed = False
            token, _ = await sessions.create_session(
                conn,
                row["objectId"],
                days=ctx.settings.session_days,
                action="login",
                installation_id=req.installation_id if isinstance(req.installation_id, str) else None,
            )
            actor = Principal(kind=PrincipalKind.USER, user_id=row["objectId"], name=row["username"], info=req.info)
            await append(conn, AuditEntry(AuditAction.LOGIN, actor, "_User", row["objectId"]))
    if failed or row is None:
        raise NotFound("Invalid username/password.")
    record = {k: v for k, v in row.items() if not k.startswith("_")}
    return NativeResponse(_user_json(record, token))


@route("GET", "login")
async def log_in_get(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    return await _log_in(ctx, req)


@route("POST", "login")
async def log_in_post(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    return await _log_in(ctx, req)


async def _session_user(ctx: NativeContext, req: NativeRequest) -> Principal:
    principal = await ctx.principal(req)
    if not principal.is_user:
        raise Invalid("Invalid session token", parse_code=ParseCode.INVALID_SESSION_TOKEN)
    return principal


@route("POST", "logout")
async def log_out(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await _session_user(ctx, req)
    async with ctx.db.write() as conn:
        assert principal.session_id is not None
        await sessions.revoke(conn, principal.session_id)
        await append(conn, AuditEntry(AuditAction.LOGOUT, principal, "_Session", principal.session_id))
    return NativeResponse({})


@route("GET", "users/me")
async def me(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await _session_user(ctx, req)
    async with ctx.db.read() as conn:
        record = await get_record(conn, USER, str(principal.user_id))
    if record is None:
        raise Invalid("Invalid session token", parse_code=ParseCode.INVALID_SESSION_TOKEN)
    return NativeResponse(_user_json(record, str(req.session_token)))


@route("GET", "users")
async def find_users(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    return NativeResponse(await objects.find(ctx, principal, "_User", req.options))


@route("GET", "users/{objectId}")
async def get_user(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    return NativeResponse(await objects.get(ctx, principal, "_User", params["objectId"], req.options))


@route("PUT", "users/{objectId}")
async def update_user(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    body = dict(req.body)
    body.pop("sessionToken", None)
    return NativeResponse(await objects.update(ctx, principal, "_User", params["objectId"], body))


@route("DELETE", "users/{objectId}")
async def delete_user(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    await ctx.records.delete(principal, "_User", params["objectId"])
    return NativeResponse({})
