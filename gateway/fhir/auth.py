"""Credentials on the FHIR door (DESIGN.md "Credentials on the FHIR door").

A Parse session token (``Authorization: Bearer r:...`` or ``X-Parse-Session-Token``)
acts as its user under the same record rules; the master key (``X-Parse-Master-Key``
with ``X-Parse-Application-Id``) is for server tooling. Any other Bearer value is a
SMART access token (``gateway.smart.tokens``): its user (or back-end client) limited
by its scopes and launch patient.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.auth import sessions
from gateway.auth.credentials import master_key_presented
from gateway.errors import GatewayError
from gateway.fhir.outcome import FhirError, OutcomeIssue
from gateway.policy.principal import Principal, RequestInfo, master
from gateway.settings import Settings
from gateway.smart.tokens import principal_from_access_token
from gateway.store import changes
from gateway.store.database import Database

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="fhir"'}
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="fhir", error="invalid_token"'}
SESSION_PREFIX = "r:"


def unauthorized(diagnostics: str) -> FhirError:
    """RFC 6750 §3: a missing or bad bearer credential is 401 with a ``WWW-Authenticate`` challenge."""
    return FhirError(401, OutcomeIssue("login", diagnostics), headers=dict(CHALLENGE))


async def authenticate(db: Database, settings: Settings, headers: Mapping[str, str], info: RequestInfo) -> Principal:
    # Who is asking starts the request: nothing read for an earlier one is reused
    # (``gateway.store.changes``; a session token reads the counters afresh).
    changes.forget()
    presented = master_key_presented(settings, headers)
    if presented is not None:
        if not presented:
            raise unauthorized("Invalid application id or master key.")
        return master(info)
    token = headers.get("x-parse-session-token")
    authorization = headers.get("authorization")
    if token is None and authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized("Only Bearer credentials are accepted.")
        token = value.strip()
        if not token.startswith(SESSION_PREFIX):
            try:
                return await principal_from_access_token(db, settings, token, info)
            except GatewayError as exc:
                raise FhirError(
                    401, OutcomeIssue("login", "Invalid or expired access token."), headers=dict(INVALID_TOKEN)
                ) from exc
    if token is None:
        raise unauthorized("Authentication required.")
    try:
        async with db.read() as conn:
            return await sessions.resolve(conn, token, info)
    except GatewayError as exc:
        raise unauthorized("Invalid or expired token.") from exc
