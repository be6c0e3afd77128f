"""``POST /hl7v2``: one ER7 message or an FHS/BHS batch in, the ACK(s) out, after the commit.

Status codes: 200 when every ACK is AA; 400 when every message was rejected (AR);
422 when every message got AE (understood, nothing applied); 207 for a batch with
mixed outcomes. The body is always the ACK text (one ACK per message, in order), so
a sender can read MSA/ERR whatever the status. 401 without a valid feed key
(``X-Feed-Key`` or ``Authorization: Bearer``) or SMART backend-services access token
(``Authorization: Bearer`` from client_credentials, with a ``system/`` scope that may
create Observations; the feed is then ``client:<id>``), 403 for a SMART token without
that scope, 415 for another content type, 413 over the HL7 size limit.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, post
from litestar.openapi.datastructures import ResponseSpec

from gateway.errors import GatewayError
from gateway.hl7v2.feeds import authenticate
from gateway.hl7v2.ingest import Delivery, Ingest, Reply
from gateway.policy.principal import PrincipalKind, RequestInfo
from gateway.policy.scopes import Interaction
from gateway.policy.smart import ScopeDenied, authorize
from gateway.smart.tokens import principal_from_access_token
from mappings.hl7v2 import AckCode

__all__ = ["ER7", "hl7v2_ingest"]

ER7 = "x-application/hl7-v2+er7"
_ACCEPTED = frozenset({ER7, "text/plain", "application/hl7-v2", "application/edi-hl7"})
_STATUS = {AckCode.AA: 200, AckCode.AR: 400, AckCode.AE: 422}


def _status(replies: list[Reply]) -> int:
    codes = {r.code for r in replies}
    return _STATUS[codes.pop()] if len(codes) == 1 else 207


def _key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("x-feed-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _problem(status: int, detail: str, **headers: str) -> Response[bytes]:
    body = json.dumps({"status_code": status, "detail": detail}).encode()
    return Response(body, status_code=status, headers=headers or None, media_type="application/json")


_ACK = ResponseSpec(data_container=str, media_type=ER7, generate_examples=False, description="ACK messages (ER7)")
_JSON = ResponseSpec(data_container=dict[str, Any], generate_examples=False, description="error")


async def _smart_feed(request: Request[Any, Any, Any], ingest: Ingest, token: str) -> str | Response[bytes] | None:
    """A SMART backend token as the sender: ``client:<id>`` when its scopes may create Observations."""
    info = RequestInfo(source_address=request.client.host if request.client else None)
    try:
        principal = await principal_from_access_token(ingest.db, request.app.state.settings, token, info)
    except GatewayError:
        return None
    if principal.kind is not PrincipalKind.SYSTEM or principal.scopes is None:
        return _problem(403, "HL7 ingest needs a backend-services token (client_credentials)")
    try:
        # The one scope check every door asks (gateway.policy.smart): results arrive as Observations.
        authorize(principal, "Observation", Interaction.CREATE)
    except ScopeDenied as exc:
        return _problem(403, f"the token lacks {exc.scope} (or .write)")
    return principal.actor_name


@post(
    "/hl7v2",
    operation_id="hl7v2Ingest",
    tags=["hl7v2"],
    status_code=200,
    media_type=ER7,
    summary="Ingest an HL7 v2 message or batch",
    responses={
        207: _ACK,
        400: _ACK,
        401: ResponseSpec(data_container=dict[str, Any], generate_examples=False, description="no valid feed key"),
        403: ResponseSpec(
            data_container=dict[str, Any], generate_examples=False, description="SMART token without the scope"
        ),
        413: _ACK,
        415: _JSON,
        422: _ACK,
    },
)
async def hl7v2_ingest(request: Request[Any, Any, Any]) -> Response[Any]:
    """POST an ER7 message (``x-application/hl7-v2+er7`` or ``text/plain``); the ACK comes back after commit."""
    ingest: Ingest = request.app.state.hl7
    key = _key(request)
    feed = await authenticate(ingest.db, key)
    if feed is None and key is not None and key.count(".") == 2:
        smart = await _smart_feed(request, ingest, key)
        if isinstance(smart, Response):
            return smart
        feed = smart
    if feed is None:
        return _problem(
            401,
            "a valid feed key is required (X-Feed-Key or Authorization: Bearer)",
            **{"WWW-Authenticate": 'Bearer realm="hl7v2"'},
        )
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in _ACCEPTED:
        return _problem(415, f"send the message as {ER7} or text/plain")
    body = await request.body()
    delivery = Delivery("http", feed, request.client.host if request.client else None)
    limit = int(request.app.state.settings.mllp_max_bytes)
    if len(body) > limit:
        reply = await ingest.reject_oversize(body[:65536], len(body), limit, delivery)
        return Response(reply.ack, status_code=413, media_type=ER7)
    replies = await ingest.handle_payload(body, delivery)
    return Response(b"".join(r.ack for r in replies), status_code=_status(replies), media_type=ER7)
