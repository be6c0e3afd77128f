"""Litestar adapter of the authorization server: /oauth/*, the JWKS and the discovery documents.

Each handler turns the HTTP request into a :class:`SmartRequest`, runs the authlib
call inside one database transaction (``server`` explains why ``run_sync``), then
writes the audit entries of what happened in that same transaction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import OAuth2Error
from joserfc import jws
from joserfc.errors import JoseError
from litestar import Request, Response, get, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.audit.writer import AuditAction, AuditEntry, append
from gateway.auth import sessions
from gateway.auth.passwords import Passwords
from gateway.policy.principal import Principal, PrincipalKind, RequestInfo
from gateway.policy.rules import PatientLink
from gateway.request_ids import new_request_id
from gateway.settings import Settings
from gateway.smart import pages, store
from gateway.smart.discovery import openid_configuration, smart_configuration
from gateway.smart.jwks_cache import JwksCache
from gateway.smart.server import GrantUser, SmartRequest, SmartServer, State
from gateway.smart.throttle import LoginThrottle
from gateway.smart.tokens import keyring, user_principal
from gateway.store.database import Database

log = logging.getLogger("gateway.smart")

FORM = "application/x-www-form-urlencoded"
HTML = "text/html; charset=utf-8"
_OAUTH_ERROR = ResponseSpec(
    data_container=dict[str, Any], generate_examples=False, description="OAuth error (error, error_description)"
)
_OAUTH_ERRORS = {400: _OAUTH_ERROR, 401: _OAUTH_ERROR}
_PAGE = ResponseSpec(data_container=str, media_type=HTML, generate_examples=False, description="an HTML page")
_PAGE_RESPONSES = {
    302: ResponseSpec(data_container=None, description="to the client's registered redirect URI (code or error)"),
    400: _PAGE,
    401: ResponseSpec(data_container=str, media_type=HTML, generate_examples=False, description="wrong password"),
    403: ResponseSpec(data_container=str, media_type=HTML, generate_examples=False, description="expired form"),
    429: ResponseSpec(
        data_container=str, media_type=HTML, generate_examples=False, description="too many failed sign-ins"
    ),
}
JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM_BYTES = 64 * 1024
PATIENT_CHOICES_MAX = 200
SIGNIN_DAYS = 1
"""How long a sign-in at the authorize page lasts, and so an ``online_access`` grant at most."""


def _settings(request: Request[Any, Any, Any]) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _db(request: Request[Any, Any, Any]) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def _info(request: Request[Any, Any, Any], client_id: str | None = None) -> RequestInfo:
    return RequestInfo(
        source_address=request.client.host if request.client else None,
        request_id=request.headers.get("x-request-id") or new_request_id(),
        client_id=client_id,
    )


def _json(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Response[bytes]:
    out = dict(JSON_HEADERS)
    for key, value in headers or []:
        if key.lower() != "content-type":
            out[key] = value
    return Response(json.dumps(body).encode(), status_code=status, headers=out, media_type="application/json")


def _oauth_error(status: int, error: str, description: str) -> Response[bytes]:
    return _json(status, {"error": error, "error_description": description})


async def _form_items(request: Request[Any, Any, Any]) -> list[tuple[str, str]] | None:
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != FORM:
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None


def _uri(request: Request[Any, Any, Any]) -> str:
    return _settings(request).base_url.rstrip("/") + request.url.path


# --------------------------------------------------------------------------- audit


async def _write_events(conn: AsyncConnection, state: State, info: RequestInfo) -> None:
    patients = store.patients_t
    for event in state.events:
        link = None
        if event.patient:
            row = (await conn.execute(select(patients.c.user).where(patients.c.objectId == event.patient))).first()
            link = PatientLink(event.patient, row.user if row is not None else None)
        who = RequestInfo(info.source_address, info.request_id, event.client_id or info.client_id)
        principal = (
            Principal(kind=PrincipalKind.USER, user_id=event.user_id, info=who)
            if event.user_id
            else Principal(
                kind=PrincipalKind.ANONYMOUS, name=f"client:{who.client_id}" if who.client_id else None, info=who
            )
        )
        await append(
            conn,
            AuditEntry(
                AuditAction(event.action),
                principal,
                entity_type="OAuthGrant",
                entity_id=event.metadata.get("grant") or event.metadata.get("jti"),
                patient=link,
                summary=event.summary,
                metadata=event.metadata,
                outcome=event.outcome,
            ),
        )


# --------------------------------------------------------------------------- token, introspect, revoke


def _jwks_cache(request: Request[Any, Any, Any]) -> JwksCache:
    """The process's cache of ``jwks_url`` key sets (created with the first use)."""
    state = request.app.state
    cache = getattr(state, "smart_jwks_cache", None)
    if cache is None:
        cache = JwksCache()
        state.smart_jwks_cache = cache
    return cache


async def _prefetch_jwks(request: Request[Any, Any, Any], items: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """The key set of a ``jwks_url`` client, before the (synchronous) grant runs; cached (``jwks_cache``)."""
    assertion = next((v for k, v in items if k == "client_assertion"), None)
    if not assertion:
        return {}
    try:
        compact = jws.extract_compact(assertion.encode())
        claims = json.loads(compact.payload)
        kid = compact.headers().get("kid")
    except (JoseError, ValueError, TypeError):
        return {}  # garbage is left to authlib to refuse
    client_id = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(client_id, str):
        return {}
    async with _db(request).read() as conn:
        row = await conn.run_sync(lambda sync: store.client_row(sync, client_id))
    url = row["jwksUrl"] if row else None
    if not url or row is None or row["jwks"]:
        return {}
    data = await _jwks_cache(request).get(url, kid if isinstance(kid, str) else None)
    return {url: data} if data is not None else {}


async def _run_endpoint(request: Request[Any, Any, Any], kind: str) -> Response[bytes]:
    items = await _form_items(request)
    if items is None:
        return _oauth_error(400, "invalid_request", f"Send the parameters as {FORM}.")
    settings = _settings(request)
    sreq = SmartRequest("POST", _uri(request), request.headers, items, form=True)
    jwks = await _prefetch_jwks(request, items) if kind == "token" else {}
    info = _info(request)
    async with _db(request).write() as conn:
        state = State(None, settings, store.utcnow(), jwks_by_url=jwks)  # type: ignore[arg-type]

        def run(sync: Connection) -> tuple[int, Any, list[tuple[str, str]]]:
            state.conn = sync
            server = SmartServer(state)
            if kind == "token":
                return server.create_token_response(sreq)  # type: ignore[no-any-return]
            return server.create_endpoint_response(kind, sreq)  # type: ignore[no-any-return]

        status, body, headers = await conn.run_sync(run)
        if status != 200:
            data = sreq.payload.data
            state.event(
                "oauth-refused",
                f"{kind} request refused: {body.get('error') if isinstance(body, dict) else status}",
                outcome="failure",
                client_id=(sreq.client.client_id if sreq.client else data.get("client_id")),
                metadata={
                    "endpoint": kind,
                    "grant_type": data.get("grant_type"),
                    "error": body.get("error") if isinstance(body, dict) else None,
                    "description": body.get("error_description") if isinstance(body, dict) else None,
                },
            )
        await _write_events(conn, state, info)
    return _json(status, body, headers)


@route(
    "/oauth/token",
    http_method=[HttpMethod.POST],
    operation_id="oauthToken",
    tags=["smart"],
    status_code=200,
    media_type="application/json",
    responses=_OAUTH_ERRORS,
)
async def oauth_token(request: Request[Any, Any, Any]) -> Response[bytes]:
    """OAuth 2 token endpoint: authorization_code (PKCE S256), refresh_token (rotating), client_credentials."""
    return await _run_endpoint(request, "token")


@route(
    "/oauth/introspect",
    http_method=[HttpMethod.POST],
    operation_id="oauthIntrospect",
    tags=["smart"],
    status_code=200,
    media_type="application/json",
    responses=_OAUTH_ERRORS,
)
async def oauth_introspect(request: Request[Any, Any, Any]) -> Response[bytes]:
    """RFC 7662 token introspection (a client may introspect its own tokens)."""
    return await _run_endpoint(request, "introspection")


@route(
    "/oauth/revoke",
    http_method=[HttpMethod.POST],
    operation_id="oauthRevoke",
    tags=["smart"],
    status_code=200,
    media_type="application/json",
    responses=_OAUTH_ERRORS,
)
async def oauth_revoke(request: Request[Any, Any, Any]) -> Response[bytes]:
    """RFC 7009 token revocation: revokes the token's whole grant."""
    return await _run_endpoint(request, "revocation")


# --------------------------------------------------------------------------- authorize


@dataclass
class Checked:
    """An authorization request authlib accepted: who asks, and what the registration allows."""

    client_id: str
    client_name: str
    scope: str
    launch_patient: str | None


class LaunchGone(Exception):
    """The EHR launch was used or expired between the consent page and the decision."""


def _html(status: int, text: str, browser: pages.Browser | None, settings: Settings) -> Response[bytes]:
    headers = dict(pages.PAGE_HEADERS)
    if browser is not None:
        headers["Set-Cookie"] = pages.cookie_header(settings, browser)
    return Response(text.encode(), status_code=status, headers=headers, media_type=HTML)


def _redirect(location: str) -> Response[bytes]:
    return Response(b"", status_code=302, headers={"Location": location, **pages.PAGE_HEADERS})


async def _refuse(request: Request[Any, Any, Any], error: OAuth2Error, client_id: str | None) -> Response[bytes]:
    """An invalid authorization request: back to the client only when its redirect URI was verified."""
    settings = _settings(request)
    state = State(None, settings, store.utcnow())  # type: ignore[arg-type]
    state.event(
        "oauth-refused",
        f"authorization request refused: {error.error}",
        outcome="failure",
        client_id=client_id,
        metadata={"endpoint": "authorize", "error": error.error, "description": error.description},
    )
    async with _db(request).write() as conn:
        await _write_events(conn, state, _info(request))
    if error.redirect_uri:
        _, _, headers = error()
        return _redirect(dict(headers)["Location"])
    return _html(400, pages.error_page(error.description or error.error), None, settings)


async def _check(request: Request[Any, Any, Any], sreq: SmartRequest) -> Checked | OAuth2Error:
    settings = _settings(request)

    def run(sync: Connection) -> Checked | OAuth2Error:
        state = State(sync, settings, store.utcnow())
        server = SmartServer(state)
        try:
            grant = server.get_consent_grant(sreq, end_user=None)
        except OAuth2Error as exc:
            return exc
        launch = sreq.payload.data.get("launch")
        client = grant.request.client
        row = store.client_row(sync, client.client_id)
        return Checked(
            client.client_id,
            (row or {}).get("name") or client.client_id,
            grant.request.scope or "",
            store.peek_launch(sync, launch, state.now) if launch else None,
        )

    async with _db(request).read() as conn:
        return await conn.run_sync(run)


@dataclass
class Context:
    """What the consent page offers and the decision must respect."""

    principal: Principal
    scopes: list[str]
    patient: str | None
    choices: list[tuple[str, str]] | None
    fixed_label: str | None
    need_banner: bool
    fhir_user: str | None


async def _consent_context(request: Request[Any, Any, Any], checked: Checked, user_id: str) -> Context | str:
    """Launch context and the scopes on offer; a string is an error to show instead."""
    patients = store.patients_t
    async with _db(request).read() as conn:
        principal = await user_principal(conn, user_id, _info(request, checked.client_id))
        if principal is None:
            return "This account cannot authorize apps."
        ctx = await conn.run_sync(lambda sync: store.user_context(sync, user_id))
        scopes = checked.scope.split()
        reach = principal.patient_ids

        async def label(pid: str) -> str:
            row = (
                await conn.execute(
                    select(patients.c.displayName, patients.c.medicalRecordNumber).where(patients.c.objectId == pid)
                )
            ).first()
            return f"{row.displayName or 'Patient'} ({row.medicalRecordNumber})" if row else pid

        if checked.launch_patient is not None:
            if reach is not None and checked.launch_patient not in reach:
                return "You cannot open this patient's records."
            return Context(
                principal,
                scopes,
                checked.launch_patient,
                None,
                await label(checked.launch_patient),
                False,
                ctx.fhir_user if ctx else None,
            )
        if "launch/patient" not in scopes:
            return Context(principal, scopes, None, None, None, True, ctx.fhir_user if ctx else None)
        if principal.own_patient_id and not principal.is_provider and not principal.is_admin:
            pid = principal.own_patient_id
            return Context(principal, scopes, pid, None, await label(pid), True, ctx.fhir_user if ctx else None)
        stmt = select(patients.c.objectId, patients.c.displayName, patients.c.medicalRecordNumber).where(
            patients.c.isActive.is_(True)
        )
        if reach is not None:
            stmt = stmt.where(patients.c.objectId.in_(sorted(reach)))
        rows = (await conn.execute(stmt.order_by(patients.c.displayName).limit(PATIENT_CHOICES_MAX))).all()
    choices = [(r.objectId, f"{r.displayName or 'Patient'} ({r.medicalRecordNumber})") for r in rows]
    if not choices:
        scopes = [s for s in scopes if s != "launch/patient"]
        return Context(principal, scopes, None, None, None, True, ctx.fhir_user if ctx else None)
    return Context(principal, scopes, None, choices, None, True, ctx.fhir_user if ctx else None)


async def _login(
    request: Request[Any, Any, Any], fields: dict[str, str], current: pages.Browser | None = None
) -> tuple[str, str] | None:
    """(user id, session id) for a correct username (or email) and password; audits failures.

    A sign-in is a ``_Session`` row (``SIGNIN_DAYS``), listed and revocable with the user's other
    sessions: ``online_access`` grants approved under it end when it does. The same person signing in
    again at a browser whose sign-in still stands (``prompt=login``) keeps that session, so the
    browser has one sign-in to end, not an unreachable older one."""
    username = fields.get("username") or ""
    password = fields.get("password") or ""
    users = store.users_t
    async with _db(request).read() as conn:
        row = (
            await conn.execute(
                select(users.c.objectId, users.c._hashed_password).where(
                    (users.c.username == username) | (users.c.email == username)
                )
            )
        ).first()
    info = _info(request, fields.get("client_id"))
    throttle = _throttle(request)
    # A known account counts under its id (its username and email are one account); an unknown
    # name under itself, refused the same way, so the lockout says nothing about existence.
    key = "id:" + row.objectId if row is not None else "name:" + username.strip().casefold()
    wait = throttle.retry_after(key, info.source_address)
    if wait:
        async with _db(request).write() as conn:
            anonymous = Principal(kind=PrincipalKind.ANONYMOUS, info=info)
            entry = AuditEntry(
                AuditAction.LOGIN_FAILED,
                anonymous,
                "_User",
                None,
                summary="SMART authorize sign-in refused: too many failed attempts",
                outcome="failure",
            )
            await append(conn, entry)
        raise Throttled(wait)
    passwords: Passwords = request.app.state.records.passwords
    ok = await passwords.verify(row._hashed_password if row else None, password) if username and password else False
    if ok and row is not None:
        throttle.succeeded(key)
    else:
        throttle.failed(key, info.source_address)
    async with _db(request).write() as conn:
        if not ok or row is None:
            anonymous = Principal(kind=PrincipalKind.ANONYMOUS, info=info)
            entry = AuditEntry(
                AuditAction.LOGIN_FAILED,
                anonymous,
                "_User",
                None,
                summary="SMART authorize sign-in failed",
                outcome="failure",
            )
            await append(conn, entry)
            return None
        previous = current.session_id if current is not None else None
        owner = await conn.run_sync(lambda sync: store.session_owner(sync, previous, store.utcnow()))
        if previous is not None and owner == row.objectId:
            session_id = previous
        else:
            if previous is not None and owner is not None:
                # Another person signs in at this browser: the previous one has left, and their sign-in
                # (with its online_access grants) must not outlive them where nobody can end it.
                await conn.run_sync(lambda sync: store.end_session(sync, previous, owner, store.utcnow()))
                gone = Principal(kind=PrincipalKind.USER, user_id=owner, session_id=previous, info=info)
                await append(
                    conn,
                    AuditEntry(
                        AuditAction.LOGOUT,
                        gone,
                        "_Session",
                        previous,
                        summary="SMART authorize sign-in ended: another user signed in at the browser",
                    ),
                )
            _, session = await sessions.create_session(conn, row.objectId, days=SIGNIN_DAYS, action="login")
            session_id = session["objectId"]
        principal = Principal(
            kind=PrincipalKind.USER, user_id=row.objectId, name=username, info=info, session_id=session_id
        )
        await append(
            conn, AuditEntry(AuditAction.LOGIN, principal, "_User", row.objectId, summary="SMART authorize sign-in")
        )
    return str(row.objectId), str(session_id)


class Throttled(Exception):
    """Too many failed sign-ins for this account or address; ``seconds`` until the next try."""

    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def _throttle(request: Request[Any, Any, Any]) -> LoginThrottle:
    """The process's sign-in throttle (created with the first sign-in)."""
    state = request.app.state
    throttle = getattr(state, "smart_login_throttle", None)
    if throttle is None:
        throttle = LoginThrottle()
        state.smart_login_throttle = throttle
    return throttle


async def _signed_in(request: Request[Any, Any, Any], browser: pages.Browser | None) -> bool:
    """The cookie's sign-in still stands: its ``_Session`` exists and has not expired (signing out anywhere ends it)."""
    if browser is None or browser.user_id is None or browser.session_id is None:
        return False
    async with _db(request).read() as conn:
        alive = await conn.run_sync(
            lambda sync: store.session_alive(sync, browser.session_id or "", browser.user_id or "", store.utcnow())
        )
    return alive is not None


async def _logout(request: Request[Any, Any, Any], browser: pages.Browser) -> None:
    """Sign out: the sign-in's ``_Session`` goes, and with it every ``online_access`` grant approved under it."""
    if browser.user_id is None or browser.session_id is None:
        return
    user_id, session_id = browser.user_id, browser.session_id
    async with _db(request).write() as conn:
        ended = await conn.run_sync(lambda sync: store.end_session(sync, session_id, user_id, store.utcnow()))
        if ended:
            principal = Principal(kind=PrincipalKind.USER, user_id=user_id, session_id=session_id, info=_info(request))
            await append(
                conn,
                AuditEntry(
                    AuditAction.LOGOUT,
                    principal,
                    "_Session",
                    session_id,
                    summary="SMART authorize sign-out: online_access grants of this sign-in revoked",
                ),
            )


async def _decide(
    request: Request[Any, Any, Any],
    sreq: SmartRequest,
    checked: Checked,
    context: Context,
    fields: dict[str, str],
    selected: list[str],
    session_id: str | None,
) -> Response[bytes]:
    settings = _settings(request)
    user = context.principal
    allow = fields.get("decision") == "allow"
    patient = context.patient
    if allow and context.choices is not None:
        chosen = fields.get("patient_choice")
        if chosen not in {pid for pid, _ in context.choices}:
            return _html(400, pages.error_page("Choose one of the listed patients."), None, settings)
        patient = chosen
    scopes = [s for s in context.scopes if s in selected]
    if allow and not scopes:
        allow = False
    if patient is None:
        scopes = [s for s in scopes if s not in ("launch/patient", "launch")]
    grant_user = (
        GrantUser(
            user_id=user.user_id or "",
            fhir_user=context.fhir_user,
            patient=patient,
            need_patient_banner=context.need_banner,
            grant_id=store.new_id(),
            scope=" ".join(scopes),
            launch=sreq.payload.data.get("launch"),
            session_id=session_id,
        )
        if allow
        else None
    )
    state = State(None, settings, store.utcnow())  # type: ignore[arg-type]

    def run(sync: Connection) -> tuple[int, Any, list[tuple[str, str]]]:
        state.conn = sync
        server = SmartServer(state)
        grant = server.get_consent_grant(sreq, end_user=grant_user)
        result: tuple[int, Any, list[tuple[str, str]]] = server.create_authorization_response(
            sreq, grant_user=grant_user, grant=grant
        )
        if (
            grant_user is not None
            and grant_user.launch
            and store.claim_launch(sync, grant_user.launch, state.now) is None
        ):
            raise LaunchGone()
        return result

    try:
        async with _db(request).write() as conn:
            status, _, headers = await conn.run_sync(run)
            location = dict(headers).get("Location", "")
            if grant_user is not None and status == 302 and "code=" in location:
                state.event(
                    "oauth-authorize",
                    "authorization code issued",
                    user_id=user.user_id,
                    client_id=checked.client_id,
                    metadata={"scope": grant_user.scope, "grant": grant_user.grant_id},
                    patient=patient,
                )
            else:
                state.event(
                    "oauth-refused",
                    "the user denied the authorization request",
                    outcome="failure",
                    user_id=user.user_id,
                    client_id=checked.client_id,
                    metadata={"endpoint": "authorize", "error": "access_denied"},
                )
            await _write_events(conn, state, _info(request, checked.client_id))
    except LaunchGone:
        return _html(400, pages.error_page("This launch was already used or has expired."), None, settings)
    except OAuth2Error as exc:
        return await _refuse(request, exc, checked.client_id)
    return _redirect(location)


def _forces_login(fields: dict[str, str]) -> bool:
    return "login" in (fields.get("prompt") or "").split()


@route(
    "/oauth/authorize",
    http_method=[HttpMethod.GET],
    operation_id="oauthAuthorize",
    tags=["smart"],
    status_code=200,
    media_type=HTML,
    responses=_PAGE_RESPONSES,
)
async def oauth_authorize(request: Request[Any, Any, Any]) -> Response[bytes]:
    """OAuth 2 authorization endpoint: the sign-in page, then consent, then a redirect with a code."""
    return await _authorize(request)


@route(
    "/oauth/authorize",
    http_method=[HttpMethod.POST],
    operation_id="oauthAuthorizePost",
    tags=["smart"],
    status_code=200,
    media_type=HTML,
    responses=_PAGE_RESPONSES,
)
async def oauth_authorize_post(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The authorization request as a form (SMART ``authorize-post``), and the sign-in and consent forms."""
    return await _authorize(request)


async def _authorize(request: Request[Any, Any, Any]) -> Response[bytes]:
    settings = _settings(request)
    if request.method == "POST":
        items = await _form_items(request)
        if items is None:
            return _html(400, pages.error_page(f"Send the form as {FORM}."), None, settings)
    else:
        items = list(request.query_params.multi_items())
    fields: dict[str, str] = {}
    for key, value in items:
        fields.setdefault(key, value)
    sreq = SmartRequest(request.method, _uri(request), request.headers, items, form=request.method == "POST")
    checked = await _check(request, sreq)
    if isinstance(checked, OAuth2Error):
        return await _refuse(request, checked, fields.get("client_id"))
    params = pages.params_of(items)
    browser = pages.unseal(settings, request.cookies.get(pages.COOKIE))
    logout = request.method == "POST" and fields.get("action") == "logout"
    stepping = request.method == "POST" and ("username" in fields or "decision" in fields or logout)
    if stepping and not pages.csrf_ok(settings, browser, fields.get("csrf_token")):
        fresh = pages.new_browser()
        page = pages.login_page(
            checked.client_name, params, pages.csrf_token(settings, fresh), "The form expired. Please sign in again."
        )
        return _html(403, page, fresh, settings)
    if logout:
        assert browser is not None
        await _logout(request, browser)
        fresh = pages.new_browser()
        page = pages.login_page(checked.client_name, params, pages.csrf_token(settings, fresh), "You are signed out.")
        return _html(200, page, fresh, settings)
    if browser is not None and browser.user_id is not None and not await _signed_in(request, browser):
        browser = pages.new_browser()  # the sign-in ended (signed out, revoked or expired): sign in again
    if "username" in fields and request.method == "POST":
        try:
            signed = await _login(request, fields, browser)
        except Throttled as exc:
            minutes = (exc.seconds + 59) // 60
            assert browser is not None
            message = f"Too many sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
            page = pages.login_page(checked.client_name, params, pages.csrf_token(settings, browser), message)
            response = _html(429, page, browser, settings)
            response.headers["Retry-After"] = str(exc.seconds)
            return response
        if signed is None:
            assert browser is not None
            page = pages.login_page(
                checked.client_name, params, pages.csrf_token(settings, browser), "Wrong username or password."
            )
            return _html(401, page, browser, settings)
        browser = pages.new_browser(*signed)
    elif browser is None or browser.user_id is None or (_forces_login(fields) and "decision" not in fields):
        # OpenID ``prompt=login``: sign in again even within the sign-in cookie's life.
        if browser is None:
            fresh = pages.new_browser()
        elif browser.user_id is not None:
            fresh = pages.new_browser(None, browser.session_id)  # signed out until the password is given again
        else:
            fresh = browser
        page = pages.login_page(checked.client_name, params, pages.csrf_token(settings, fresh))
        return _html(200, page, fresh, settings)
    assert browser is not None and browser.user_id is not None
    context = await _consent_context(request, checked, browser.user_id)
    if isinstance(context, str):
        return _html(403, pages.error_page(context), browser, settings)
    if "decision" in fields and request.method == "POST":
        selected = [v for k, v in items if k == "grant_scope"]
        return await _decide(request, sreq, checked, context, fields, selected, browser.session_id)
    page = pages.consent_page(
        checked.client_name,
        params,
        pages.csrf_token(settings, browser),
        context.principal.name or "",
        context.scopes,
        context.choices,
        context.fixed_label,
    )
    return _html(200, page, browser, settings)


# --------------------------------------------------------------------------- keys and discovery


@get("/.well-known/jwks.json", operation_id="jwks", tags=["smart"], media_type="application/json")
async def jwks(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The public keys that verify the gateway's access and id tokens (current and recently retired)."""
    return Response(keyring(_settings(request)).jwks(), headers={"Cache-Control": "max-age=300"})


@get("/.well-known/openid-configuration", operation_id="openidConfiguration", tags=["smart"])
async def openid_config(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """OpenID Connect discovery for ``openid fhirUser``."""
    return openid_configuration(_settings(request))


@get("/fhir/.well-known/smart-configuration", operation_id="smartConfiguration", tags=["smart"])
async def smart_config(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """SMART App Launch discovery (``.well-known/smart-configuration`` under the FHIR base)."""
    return smart_configuration(_settings(request))


ROUTES = [
    oauth_authorize,
    oauth_authorize_post,
    oauth_token,
    oauth_introspect,
    oauth_revoke,
    jwks,
    openid_config,
    smart_config,
]
