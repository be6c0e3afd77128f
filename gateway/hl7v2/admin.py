"""Admin endpoints for HL7 v2 dead letters: ``/hl7v2/dead-letters`` (list, show, re-process).

Who: the master key (``X-Parse-Master-Key`` with ``X-Parse-Application-Id``) or a
signed-in admin (``X-Parse-Session-Token`` or ``Authorization: Bearer r:...``). No
credential or a bad one is 401; a valid session of a non-admin is 403.

Errors are the HL7 door's JSON, as ``POST /hl7v2`` answers them (not a FHIR
OperationOutcome, not a Parse ``{code, error}``: these routes belong to neither door):
``{"status_code": <int>, "detail": "<what went wrong>"}``. Handlers stay thin: the
work is in ``gateway.hl7v2.deadletters``, shared with the CLI.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from gateway.auth import sessions
from gateway.auth.credentials import master_key_presented
from gateway.errors import GatewayError
from gateway.hl7v2 import deadletters
from gateway.hl7v2.ingest import Ingest
from gateway.policy.principal import Principal, RequestInfo, master
from gateway.settings import Settings

__all__ = ["ROUTES"]

_SECURITY: list[dict[str, list[str]]] = [
    {"parseApplicationId": [], "parseMasterKey": []},
    {"parseSessionToken": []},
]
_ERROR = ResponseSpec(
    data_container=dict[str, Any], generate_examples=False, description='{"status_code": N, "detail": "..."}'
)
_ERRORS = {401: _ERROR, 403: _ERROR, 404: _ERROR}


class _Denied(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _error(status: int, detail: str) -> Response[dict[str, Any]]:
    headers = {"WWW-Authenticate": 'Bearer realm="hl7v2-admin"'} if status == 401 else None
    return Response({"status_code": status, "detail": detail}, status_code=status, headers=headers)


async def _admin(request: Request[Any, Any, Any]) -> Principal:
    """The master key or an admin's session; raises ``_Denied`` (401/403) otherwise."""
    settings: Settings = request.app.state.settings
    ingest: Ingest = request.app.state.hl7
    info = RequestInfo(source_address=request.client.host if request.client else None)
    headers = request.headers
    presented = master_key_presented(settings, headers)
    if presented is not None:
        if presented:
            return master(info)
        raise _Denied(401, "invalid application id or master key")
    token = headers.get("x-parse-session-token")
    if token is None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip().startswith("r:"):
            token = value.strip()
    if not token:
        raise _Denied(401, "the master key or an admin session token is required")
    try:
        async with ingest.db.read() as conn:
            principal = await sessions.resolve(conn, token, info)
    except GatewayError as exc:
        raise _Denied(401, "invalid or expired session token") from exc
    if not principal.is_admin:
        raise _Denied(403, "only admins may read or re-process HL7 dead letters")
    return principal


_LIST = """HL7 v2 messages that were not applied (AE/AR), newest first, with the reasons (HL7 0357 code,
location segment[position]-field, text). No message content here: show one to see it.

200: `{"results": [{"id", "receivedAt", "outcome", "transport", "feed", "sourceAddress",
"sendingApplication", "sendingFacility", "controlId", "messageType", "size", "reasons", "effects"}]}`.

Master key (with the application id) or an admin session. Errors are JSON
`{"status_code": N, "detail": "..."}`: 401 no or bad credential, 403 not an admin, 400 bad `limit`."""

_SHOW = """One dead letter: the list fields plus `message` (the raw message as received, one segment per
line) and `ack` (the ACK that was sent). Reading it writes an AuditLog entry (it holds health data).

Master key or admin session. Errors are JSON `{"status_code": N, "detail": "..."}`: 401, 403, and
404 when there is no such dead letter (an applied message is not one)."""

_REPROCESS = """Run a dead letter through ingest again after the cause was fixed (`portal-gateway hl7 reprocess`
on the CLI). 200 with `{"id", "outcome" (AA/AE/AR), "messageId" (the new message-log row),
"duplicate", "ack"}` whatever the new outcome: the request worked, `outcome` says whether the
message now applied. The old row stays in the log, marked `reprocessedAs`. Audited.

Master key or admin session. Errors are JSON `{"status_code": N, "detail": "..."}`: 401, 403, and
404 when there is no such dead letter."""


@get(
    "/hl7v2/dead-letters",
    operation_id="hl7v2DeadLetterList",
    summary="List HL7 v2 dead letters",
    description=_LIST,
    tags=["hl7v2"],
    security=_SECURITY,
    responses=_ERRORS,
)
async def list_dead_letters(
    request: Request[Any, Any, Any],
    limit: int = Parameter(default=50, ge=1, description="page size; larger than 1000 is clamped to 1000"),
) -> Response[dict[str, Any]]:
    """See ``_LIST`` (the OpenAPI description): the dead letters, for an admin."""
    try:
        await _admin(request)
    except _Denied as denied:
        return _error(denied.status, denied.detail)
    rows = await deadletters.list_dead_letters(request.app.state.hl7, limit)
    return Response({"results": rows})


@get(
    "/hl7v2/dead-letters/{message_id:str}",
    operation_id="hl7v2DeadLetterGet",
    summary="Show one HL7 v2 dead letter",
    description=_SHOW,
    tags=["hl7v2"],
    security=_SECURITY,
    responses=_ERRORS,
)
async def show_dead_letter(request: Request[Any, Any, Any], message_id: str) -> Response[dict[str, Any]]:
    """See ``_SHOW``: one dead letter with its raw message, audited."""
    try:
        principal = await _admin(request)
    except _Denied as denied:
        return _error(denied.status, denied.detail)
    shown = await deadletters.show_dead_letter(request.app.state.hl7, message_id, principal)
    if shown is None:
        return _error(404, f"no dead letter {message_id!r}")
    return Response(shown)


@post(
    "/hl7v2/dead-letters/{message_id:str}/reprocess",
    operation_id="hl7v2DeadLetterReprocess",
    summary="Re-process an HL7 v2 dead letter",
    description=_REPROCESS,
    tags=["hl7v2"],
    security=_SECURITY,
    status_code=200,
    responses=_ERRORS,
)
async def reprocess_dead_letter(request: Request[Any, Any, Any], message_id: str) -> Response[dict[str, Any]]:
    """See ``_REPROCESS``: the CLI's ``hl7 reprocess`` over HTTP (same code)."""
    try:
        principal = await _admin(request)
    except _Denied as denied:
        return _error(denied.status, denied.detail)
    result = await deadletters.reprocess(request.app.state.hl7, message_id, principal)
    if result is None:
        return _error(404, f"no dead letter {message_id!r}")
    return Response(result)


ROUTES = [list_dead_letters, show_dead_letter, reprocess_dead_letter]
