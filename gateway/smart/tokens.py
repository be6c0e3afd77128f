"""SMART access tokens: JWTs the gateway signs, and the one function that turns one back into a Principal.

Validation is strict on purpose (RFC 8725, catalog B07): the header must say
``alg: RS256`` and ``typ: at+jwt`` and carry the ``kid`` of a key we publish (looked up
in our own key ring, never fetched: ``jku``/``x5u``/``jwk`` headers are ignored); the
signature is checked with that key and RS256 only, so ``alg: none`` and an HS256
token "signed" with our public key both fail; ``iss`` and ``aud`` must be ours;
``exp`` must be in the future and ``nbf``/``iat`` not in it (no leeway: the issuer is
this process's clock). Then the ``jti`` must be one we issued and did not revoke, so
revocation is immediate (catalog A11).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.auth.roles import user_roles
from gateway.errors import Unauthorized
from gateway.policy.principal import Principal, PrincipalKind, RequestInfo, system
from gateway.policy.scopes import SmartScopes, parse_scopes
from gateway.settings import Settings
from gateway.signing_keys import ALGORITHM, KeyRing
from gateway.smart import store
from gateway.store import hotpath
from gateway.store.database import Database

ACCESS_TOKEN_TYPE = "at+jwt"
MAX_TOKEN_LENGTH = 8192
CLOCK_SKEW_SECONDS = 0
SYSTEM_PREFIX = "client:"


class InvalidToken(Unauthorized):
    """A bearer token that is malformed, not ours, expired or revoked (401 ``invalid_token``)."""

    def default_message(self) -> str:
        return "Invalid or expired access token."


def issuer(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def fhir_base(settings: Settings) -> str:
    return issuer(settings) + "/fhir"


def absolute_fhir_user(settings: Settings, fhir_user: str | None) -> str | None:
    return f"{fhir_base(settings)}/{fhir_user}" if fhir_user else None


def relative_fhir_user(settings: Settings, value: object) -> str | None:
    """``Patient/<id>`` from the absolute URL a token carries (None for anything else)."""
    if not isinstance(value, str):
        return None
    prefix = fhir_base(settings) + "/"
    return value[len(prefix) :] if value.startswith(prefix) else None


def _retired_mtime(path: Path) -> float:
    retired = path.with_name(path.name + ".retired.json")
    return retired.stat().st_mtime if retired.exists() else 0.0


@lru_cache(maxsize=8)
def _ring(path: str, overlap: int, stamp: tuple[float, float]) -> KeyRing:
    return KeyRing(path, overlap)


def keyring(settings: Settings) -> KeyRing:
    """The key ring for ``settings.signing_key_file``, reloaded when the key files change (rotation)."""
    path = Path(settings.signing_key_file)
    overlap = max(settings.access_token_seconds, settings.backend_token_seconds) + 60
    if not path.exists():
        return _ring(str(path), overlap, (0.0, 0.0))
    return _ring(str(path), overlap, (path.stat().st_mtime, _retired_mtime(path)))


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    jti: str
    issued_at: int
    expires_at: int


def sign_access_token(
    settings: Settings,
    *,
    client_id: str,
    subject: str,
    scope: str,
    lifetime: int,
    patient: str | None = None,
    fhir_user: str | None = None,
) -> AccessToken:
    ring = keyring(settings)
    now = int(time.time())
    jti = store.new_id()
    claims: dict[str, Any] = {
        "iss": issuer(settings),
        "aud": fhir_base(settings),
        "sub": subject,
        "client_id": client_id,
        "scope": scope,
        "jti": jti,
        "iat": now,
        "exp": now + lifetime,
    }
    if patient:
        claims["patient"] = patient
    if fhir_user:
        claims["fhirUser"] = absolute_fhir_user(settings, fhir_user)
    header = {"alg": ALGORITHM, "typ": ACCESS_TOKEN_TYPE, "kid": ring.kid}
    return AccessToken(jwt.encode(header, claims, ring.current, algorithms=[ALGORITHM]), jti, now, now + lifetime)


def verify_signature(settings: Settings, token: object) -> dict[str, Any]:
    """Header, signature, issuer, audience and times of an access token; its claims. No database."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise InvalidToken()
    try:
        header = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise InvalidToken() from exc
    if header.get("alg") != ALGORITHM or header.get("typ") != ACCESS_TOKEN_TYPE or "crit" in header:
        raise InvalidToken()
    kid = header.get("kid")
    ring = keyring(settings)
    keys = {k.kid: k for k in ring.verification_keys().keys}
    if not isinstance(kid, str) or kid not in keys:
        raise InvalidToken()
    try:
        decoded = jwt.decode(token, keys[kid], algorithms=[ALGORITHM])
    except (JoseError, ValueError) as exc:
        raise InvalidToken() from exc
    claims = decoded.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=CLOCK_SKEW_SECONDS,
        iss={"essential": True, "value": issuer(settings)},
        aud={"essential": True, "value": fhir_base(settings)},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise InvalidToken() from exc
    now = time.time()
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now or claims["iat"] > now + 5:
        raise InvalidToken()
    for name in ("client_id", "scope", "jti", "sub"):
        if not isinstance(claims.get(name), str):
            raise InvalidToken()
    return dict(claims)


def live_token_row(conn: Connection, claims: dict[str, Any]) -> dict[str, Any] | None:
    """The stored record of a verified token when it is neither revoked nor expired, and, for an
    ``online_access`` grant, while the sign-in that approved it lasts."""
    row = store.access_token_row(conn, claims["jti"])
    if row is None or row["revokedAt"] is not None or row["clientId"] != claims["client_id"]:
        return None
    now = store.utcnow()
    if row["expiresAt"] <= now:
        return None
    if row["sessionId"] is not None and store.session_alive(conn, row["sessionId"], row["user"] or "", now) is None:
        return None  # online_access: the sign-in that approved it has ended
    return row


async def user_principal(conn: AsyncConnection, user_id: str, info: RequestInfo) -> Principal | None:
    """A user as a Principal (roles, own patient) as ``sessions.resolve`` builds it; None when the user
    is gone or their patient or provider profile is inactive."""
    ctx = await conn.run_sync(lambda sync: store.user_context(sync, user_id))
    if ctx is None or not ctx.active:
        return None
    roles = await hotpath.role_names(conn, user_id)
    if roles is None:
        roles = await user_roles(conn, user_id)
    return Principal(
        kind=PrincipalKind.USER,
        user_id=user_id,
        roles=roles,
        name=ctx.username,
        info=info,
        own_patient_id=ctx.own_patient,
    )


async def principal_from_access_token(db: Database, settings: Settings, token: str, info: RequestInfo) -> Principal:
    """The caller a SMART access token stands for, scope-limited; ``InvalidToken`` (401) otherwise.

    A user token acts as its user under the record rules (roles and own patient loaded as
    for a Parse session) AND its scopes; a client_credentials token is the system
    principal ``client:<id>``, confined by its ``system/`` scopes.
    """
    claims = verify_signature(settings, token)
    try:
        scopes = parse_scopes(claims["scope"])
    except ValueError as exc:
        raise InvalidToken() from exc
    client_id = claims["client_id"]
    info = RequestInfo(source_address=info.source_address, request_id=info.request_id, client_id=client_id)
    async with db.read() as conn:
        row = await conn.run_sync(lambda sync: live_token_row(sync, claims))
        if row is None:
            raise InvalidToken()
        user_id = row["user"]
        if user_id is None:
            return _with_scopes(system(SYSTEM_PREFIX + client_id, info), claims, scopes, settings)
        principal = await user_principal(conn, user_id, info)
        if principal is None or claims["sub"] != user_id:
            raise InvalidToken()
    return _with_scopes(principal, claims, scopes, settings)


def _with_scopes(principal: Principal, claims: dict[str, Any], scopes: SmartScopes, settings: Settings) -> Principal:
    patient = claims.get("patient")
    return replace(
        principal,
        scopes=scopes,
        patient_context=patient if isinstance(patient, str) else None,
        fhir_user=relative_fhir_user(settings, claims.get("fhirUser")),
    )
