"""Scoped principals against the real FHIR router and store (no HTTP, no token), for policy tests.

The HTTP tests in ``test_scopes_http.py`` use real access tokens from ``gateway.smart``;
these drive ``gateway.fhir.router.handle`` -- the function every HTTP request reaches --
with a principal resolved from a real session and given scopes, so the scope policy is
tested before and independently of the authorization server.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from gateway.auth import sessions
from gateway.auth.passwords import Passwords
from gateway.fhir import router
from gateway.fhir.context import FhirContext, FhirRequest, FhirResponse
from gateway.policy.principal import Principal, PrincipalKind, RequestInfo
from gateway.policy.scopes import parse_scopes
from gateway.records.service import Records
from gateway.store.database import Database
from tests.api_support import Api


@dataclass
class Door:
    """The FHIR router over the demo database, on the test's own event loop (the ASGI test
    client runs the app on another loop, where an asyncpg pool cannot be shared)."""

    demo: Api
    ctx: FhirContext


@asynccontextmanager
async def open_door(demo: Api) -> AsyncIterator[Door]:
    """Each test module's ``door`` fixture: a second Records over the demo database."""
    settings = demo.client.app.state.settings
    db = Database(settings.database_url)
    records = Records(db, settings, Passwords(1, 1024))
    try:
        yield Door(demo, FhirContext.build(settings, records))
    finally:
        records.reads.close()
        await db.dispose()


async def principal_of(door: Door, who: str) -> Principal:
    """The real principal of a demo user's session (roles, care teams, own patient)."""
    async with door.ctx.records.db.read() as conn:
        return await sessions.resolve(conn, door.demo.tokens[who], RequestInfo())


async def user_token(door: Door, who: str, scopes: str, patient: str | None = None) -> Principal:
    return replace(await principal_of(door, who), scopes=parse_scopes(scopes), patient_context=patient)


def system_token(scopes: str, client_id: str = "backend") -> Principal:
    """What a client_credentials token resolves to: a SYSTEM principal named after the client."""
    return Principal(kind=PrincipalKind.SYSTEM, name=f"client:{client_id}", scopes=parse_scopes(scopes))


def _route(method: str, rest: str) -> tuple[router.Route | None, dict[str, str]]:
    # literal segments (``_history``, ``_search``) before ``{id}``, as the HTTP router matches them
    for r in sorted(router.ROUTES, key=lambda r: "{" in r.pattern):
        if r.method != method:
            continue
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", r.pattern) + "$"
        m = re.match(pattern, rest)
        if m:
            return r, m.groupdict()
    return None, {}


async def call(
    door: Door,
    principal: Principal,
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> FhirResponse:
    """``GET Observation/abc?x=y`` through the FHIR router as ``principal``."""
    parts = urlsplit(url)
    resource_type, _, rest = parts.path.strip("/").partition("/")
    route, path = _route(method, rest)
    req = FhirRequest(
        method,
        principal,
        parse_qsl(parts.query, keep_blank_values=True),
        {k.lower(): v for k, v in (headers or {}).items()},
        msgspec.json.encode(body) if body is not None else b"",
    )
    return await router.handle(door.ctx, resource_type, route, req, path)


def match_ids(resp: FhirResponse) -> list[str]:
    assert resp.status == 200, resp.body
    assert resp.body is not None
    return [e["resource"]["id"] for e in resp.body.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def diagnostics(resp: FhirResponse) -> str:
    assert resp.body is not None and resp.body["resourceType"] == "OperationOutcome", resp.body
    return " ".join(str(i.get("diagnostics")) for i in resp.body["issue"])
