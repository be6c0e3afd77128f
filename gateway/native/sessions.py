"""``/sessions``: a user's own sessions; tokens are minted by the server only."""

from __future__ import annotations

from gateway.auth import sessions
from gateway.errors import Invalid, ParseCode
from gateway.native import objects
from gateway.native.codec import iso
from gateway.native.context import NativeContext, NativeResponse
from gateway.native.dispatch import route
from gateway.native.encode import to_json
from gateway.native.request import NativeRequest
from gateway.store.classes import CLASSES
from gateway.store.objects import get_record

SESSION = CLASSES["_Session"]


@route("GET", "sessions")
async def list_sessions(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    return NativeResponse(await objects.find(ctx, principal, "_Session", req.options))


@route("GET", "sessions/me")
async def current_session(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    if not principal.is_user or principal.session_id is None:
        raise Invalid("Session token required.", parse_code=ParseCode.INVALID_SESSION_TOKEN)
    async with ctx.db.read() as conn:
        record = await get_record(conn, SESSION, principal.session_id)
    if record is None:
        raise Invalid("Invalid session token", parse_code=ParseCode.INVALID_SESSION_TOKEN)
    body = to_json(SESSION, record)
    body["sessionToken"] = req.session_token
    return NativeResponse(body)


@route("POST", "sessions")
async def new_session(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    """Parse lets a signed-in user mint another session for themself; every field is server-set."""
    principal = await ctx.principal(req)
    if not principal.is_user or principal.user_id is None:
        raise Invalid("Session token required.", parse_code=ParseCode.INVALID_SESSION_TOKEN)
    async with ctx.db.write() as conn:
        token, row = await sessions.create_session(
            conn, principal.user_id, days=ctx.settings.session_days, action="create"
        )
    return NativeResponse(
        {"objectId": row["objectId"], "createdAt": iso(row["createdAt"]), "sessionToken": token}, status=201
    )


@route("GET", "sessions/{objectId}")
async def get_session(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    return NativeResponse(await objects.get(ctx, principal, "_Session", params["objectId"], req.options))


@route("DELETE", "sessions/{objectId}")
async def delete_session(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    principal = await ctx.principal(req)
    await ctx.records.delete(principal, "_Session", params["objectId"])
    return NativeResponse({})
