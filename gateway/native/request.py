"""One Parse request, whatever shape it arrived in.

Plain REST puts credentials in ``X-Parse-*`` headers and query options in the URL;
the JavaScript SDK POSTs a ``text/plain`` JSON body carrying ``_method``,
``_ApplicationId``, ``_SessionToken``, ``_MasterKey`` and the query options. Both
become a ``NativeRequest`` before any handler runs.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Request

from gateway.errors import GatewayError, Invalid, ParseCode
from gateway.policy.principal import RequestInfo
from gateway.request_ids import new_request_id
from gateway.settings import Settings

BODY_CREDENTIALS = {
    "_ApplicationId": "app_id",
    "_JavaScriptKey": "client_key",
    "_ClientKey": "client_key",
    "_RestAPIKey": "client_key",
    "_MasterKey": "master_key",
    "_SessionToken": "session_token",
    "_InstallationId": "installation_id",
    "_ClientVersion": "client_version",
}
IGNORED_BODY_KEYS = frozenset({"_method", "_RevocableSession", "_ContentType", "_context", "_noBody"})
OVERRIDABLE = frozenset({"GET", "PUT", "DELETE", "POST"})


class AppUnauthorized(GatewayError):
    """Missing or wrong application id / keys: Parse Server answers 403 ``{"error": "unauthorized"}``."""

    status_code = 403

    def default_message(self) -> str:
        return "unauthorized"


@dataclass(slots=True)
class NativeRequest:
    method: str
    body: dict[str, Any]
    options: dict[str, Any]
    app_id: str | None = None
    client_key: str | None = None
    master_key: str | None = None
    session_token: Any = None
    installation_id: str | None = None
    client_version: str | None = None
    info: RequestInfo = field(default_factory=RequestInfo)

    def sub_request(self, method: str, body: dict[str, Any], options: dict[str, Any]) -> NativeRequest:
        """A ``/batch`` entry: same credentials, its own method and body."""
        return NativeRequest(
            method=method,
            body=body,
            options=options,
            app_id=self.app_id,
            client_key=self.client_key,
            master_key=self.master_key,
            session_token=self.session_token,
            installation_id=self.installation_id,
            client_version=self.client_version,
            info=self.info,
        )


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def reject_nul(value: Any) -> None:
    """PostgreSQL text cannot hold U+0000; refuse it on every backend alike instead of failing in the driver."""
    if _has_nul(value):
        raise Invalid("strings may not contain the NUL character (U+0000)", parse_code=ParseCode.INVALID_JSON)


def decode_json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise Invalid("Invalid JSON", parse_code=ParseCode.INVALID_JSON) from exc
    if not isinstance(value, dict):
        raise Invalid("The request body must be a JSON object.", parse_code=ParseCode.INVALID_JSON)
    return value


def client_address(request: Request[Any, Any, Any], settings: Settings) -> str | None:
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer and peer in settings.trusted_proxies:
        return forwarded.split(",")[0].strip()
    return peer


_WANTED = {
    b"x-parse-application-id": "app_id",
    b"x-parse-rest-api-key": "client_key",
    b"x-parse-javascript-key": "client_key",
    b"x-parse-client-key": "client_key",
    b"x-parse-master-key": "master_key",
    b"x-parse-session-token": "session_token",
    b"x-parse-installation-id": "installation_id",
    b"x-parse-client-version": "client_version",
    b"x-parse-request-id": "request_id",
    b"x-request-id": "request_id",
    b"x-forwarded-for": "forwarded_for",
}


async def native_request(request: Request[Any, Any, Any], settings: Settings) -> NativeRequest:
    # One pass over the raw ASGI headers: this runs on every request of the read path.
    found: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        attr = _WANTED.get(name.lower())
        if attr is not None and attr not in found:
            found[attr] = value.decode("latin-1")
    method = request.method.upper()
    raw = await request.body() if method in ("POST", "PUT", "DELETE") else b""
    body = decode_json_body(raw)
    creds: dict[str, Any] = {
        "app_id": found.get("app_id"),
        "client_key": found.get("client_key"),
        "master_key": found.get("master_key"),
        "session_token": found.get("session_token"),
        "installation_id": found.get("installation_id"),
        "client_version": found.get("client_version"),
    }
    options: dict[str, Any] = {}
    if body:
        override = body.pop("_method", None) if method == "POST" else None
        for key, attr in BODY_CREDENTIALS.items():
            if key in body:
                value = body.pop(key)
                if creds.get(attr) is None:
                    creds[attr] = value
        for key in IGNORED_BODY_KEYS:
            body.pop(key, None)
        if isinstance(override, str) and override.upper() in OVERRIDABLE:
            method = override.upper()
            if method == "GET":
                options, body = body, {}
        elif override is not None:
            raise Invalid(f"unsupported _method {override!r}", parse_code=ParseCode.INVALID_JSON)
    if method == "GET" and request.scope.get("query_string"):
        options = dict(request.query_params)
    if body or options:
        reject_nul(body)
        reject_nul(options)
    peer = request.scope.get("client")
    peer_host = peer[0] if peer else None
    forwarded = found.get("forwarded_for")
    source = forwarded.split(",")[0].strip() if forwarded and peer_host in settings.trusted_proxies else peer_host
    info = RequestInfo(source_address=source, request_id=found.get("request_id") or new_request_id(), client_id=None)
    return NativeRequest(method=method, body=body, options=options, info=info, **creds)


def check_app(req: NativeRequest, settings: Settings) -> bool:
    """Validate application id and keys; returns True when the master key was presented."""
    if not isinstance(req.app_id, str) or not hmac.compare_digest(req.app_id.encode(), settings.app_id.encode()):
        raise AppUnauthorized()
    if req.master_key is not None:
        if not isinstance(req.master_key, str) or not hmac.compare_digest(
            req.master_key.encode(), settings.master_key.encode()
        ):
            raise AppUnauthorized()
        return True
    if settings.rest_api_key is not None and not (
        isinstance(req.client_key, str) and hmac.compare_digest(req.client_key.encode(), settings.rest_api_key.encode())
    ):
        raise AppUnauthorized()
    return False
