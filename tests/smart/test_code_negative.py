"""Catalog B01-B04: PKCE, single-use codes, exact redirect URIs and the Inferno-style negative set."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gateway.smart import store
from gateway.store.database import Database
from gateway.store.models import AuditLog, table_of
from tests.smart.support import APP_REDIRECT, Smart, pkce, query_of


async def _audit_actions(smart: Smart) -> list[tuple[str, str]]:
    db = Database(smart.url)
    try:
        async with db.read() as conn:
            log = table_of(AuditLog)
            rows = await conn.execute(select(log.c.action, log.c.outcome).order_by(log.c.seq))
            return [(r.action, r.outcome) for r in rows]
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    "change",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge": "short"},
    ],
    ids=["no-challenge", "plain", "no-method", "malformed"],
)
@pytest.mark.parametrize("client_id", ["app-public", "app-conf"])
async def test_authorize_refuses_without_s256_pkce(smart: Smart, change: dict[str, str | None], client_id: str) -> None:
    params = smart.authorize_params(client_id, **change)
    r = await smart.client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert r.status_code == 302
    q = query_of(r.headers["location"])
    assert q["error"] == "invalid_request" and "code" not in q and q["state"] == params["state"]


async def test_discovery_says_s256_only(smart: Smart) -> None:
    conf = (await smart.client.get("/fhir/.well-known/smart-configuration")).json()
    assert conf["code_challenge_methods_supported"] == ["S256"]


@pytest.mark.parametrize(
    ("verifier", "error"),
    [
        ("", "invalid_request"),
        ("a" * 43 + "!", "invalid_request"),
        ("x" * 64, "invalid_grant"),
        ("CHALLENGE", "invalid_grant"),
    ],
    ids=["blank", "illegal-chars", "random", "equals-challenge"],
)
async def test_token_step_refuses_a_bad_verifier(smart: Smart, verifier: str, error: str) -> None:
    code, params = await smart.code_for("alice")
    if verifier == "CHALLENGE":
        verifier = params["code_challenge"]
    r = await smart.exchange(code, params, verifier=verifier)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error


async def test_confidential_client_needs_a_verifier_too(smart: Smart) -> None:
    code, _ = await smart.code_for("alice", client_id="app-conf")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT}
    r = await smart.token(data, auth=("app-conf", smart.secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_reused_code_fails_and_revokes_what_it_produced(smart: Smart) -> None:
    code, params = await smart.code_for("alice")
    first = await smart.exchange(code, params)
    assert first.status_code == 200
    tokens = first.json()
    assert (await smart.fhir("/fhir/Observation", tokens["access_token"])).status_code == 200
    again = await smart.exchange(code, params)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    r = await smart.fhir("/fhir/Observation", tokens["access_token"])
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert (await smart.introspect(tokens["access_token"]))["active"] is False
    refresh = await smart.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "app-public"}
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    actions = await _audit_actions(smart)
    assert ("oauth-revoke", "failure") in actions and ("oauth-refused", "failure") in actions


async def test_concurrent_exchanges_of_one_code_yield_one_token(smart: Smart) -> None:
    code, params = await smart.code_for("alice")
    results = await asyncio.gather(*(smart.exchange(code, params) for _ in range(8)))
    assert sorted(r.status_code for r in results) == [200] + [400] * 7


async def test_code_of_another_client_and_other_redirect_are_invalid_grant(smart: Smart) -> None:
    code, params = await smart.code_for("alice")
    other = dict(params, client_id="app-other")
    r = await smart.exchange(code, other)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    code, params = await smart.code_for("alice")
    r = await smart.exchange(code, dict(params, redirect_uri="https://app.example/cb/"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_expired_code_is_invalid_grant(smart: Smart) -> None:
    code, params = await smart.code_for("alice")
    db = Database(smart.url)
    try:
        async with db.write() as conn:
            await conn.execute(
                update(store.codes_t)
                .where(store.codes_t.c.codeHash == store.digest(code))
                .values(expiresAt=store.utcnow() - timedelta(seconds=1))
            )
    finally:
        await db.dispose()
    r = await smart.exchange(code, params)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_code_lives_at_most_sixty_seconds(smart: Smart) -> None:
    code, _ = await smart.code_for("alice")
    db = Database(smart.url)
    try:
        async with db.read() as conn:
            row = (
                await conn.execute(select(store.codes_t).where(store.codes_t.c.codeHash == store.digest(code)))
            ).first()
    finally:
        await db.dispose()
    assert row is not None
    assert (row.expiresAt - row.createdAt).total_seconds() <= 60


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb/",
        "https://app.example/CB",
        "https://app.example/cb?x=1",
        "https://app.example/cb#f",
        "https://app.example/cb/../evil",
        "https://app.example.evil.com/cb",
        "https://app.example@evil.com/cb",
        "http://app.example/cb",
        "https://app.example:8443/cb",
        "https://app.example/%63b",
    ],
)
async def test_redirect_uri_must_match_exactly_and_is_never_followed(smart: Smart, uri: str) -> None:
    r = await smart.client.get("/oauth/authorize", params=smart.authorize_params(redirect_uri=uri))
    assert r.status_code == 400
    assert "location" not in r.headers
    assert "evil" not in r.headers.get("location", "")


async def test_missing_redirect_uri_with_several_registered_is_refused(smart: Smart) -> None:
    r = await smart.client.get("/oauth/authorize", params=smart.authorize_params("app-other", redirect_uri=None))
    assert r.status_code == 400 and "location" not in r.headers


async def test_inferno_negatives(smart: Smart) -> None:
    r = await smart.client.get("/oauth/authorize", params=smart.authorize_params("BAD_CLIENT_ID"))
    assert r.status_code == 400 and "location" not in r.headers
    r = await smart.token(
        {
            "grant_type": "authorization_code",
            "code": "BAD_CODE",
            "redirect_uri": APP_REDIRECT,
            "client_id": "BAD_CLIENT_ID",
            "code_verifier": pkce()[0],
        }
    )
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    r = await smart.token(
        {
            "grant_type": "authorization_code",
            "code": "BAD_CODE",
            "redirect_uri": APP_REDIRECT,
            "client_id": "app-public",
            "code_verifier": pkce()[0],
        }
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    params = smart.authorize_params(aud="https://other.example/fhir")
    r = await smart.client.get("/oauth/authorize", params=params, follow_redirects=False)
    q = query_of(r.headers["location"])
    assert q["error"] == "invalid_request" and "code" not in q and q["state"] == params["state"]
    params = smart.authorize_params(scope="launch patient/*.rs", launch="not-a-launch")
    r = await smart.client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert query_of(r.headers["location"])["error"] == "invalid_request"
    odd_state = "a b&c=<d>\"'é"
    _, params = await smart.code_for("alice", state=odd_state)
    assert params["state"] == odd_state  # code_for checked the echo byte for byte
    actions = await _audit_actions(smart)
    assert actions.count(("oauth-refused", "failure")) >= 4


async def test_pages_escape_reflected_values_and_need_csrf(smart: Smart) -> None:
    evil = '"><script>alert(1)</script>'
    params = smart.authorize_params(state=evil, nonce=evil)
    page = await smart.client.get("/oauth/authorize", params=params)
    assert page.status_code == 200
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    consent = await smart.login(params, "alice")
    assert "<script>" not in consent.text
    forged = await smart.client.post(
        "/oauth/authorize",
        data={**params, "decision": "allow", "grant_scope": "patient/Observation.rs", "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "location" not in forged.headers
    smart.client.cookies.clear()
    no_cookie = await smart.client.post(
        "/oauth/authorize",
        data={**params, "username": "alice@example.org", "password": "demo-pass-2026", "csrf_token": "x"},
    )
    assert no_cookie.status_code == 403


async def test_wrong_password_shows_the_login_again(smart: Smart) -> None:
    params = smart.authorize_params()
    page = await smart.client.get("/oauth/authorize", params=params)
    from tests.smart.support import form_fields

    fields = form_fields(page.text)
    fields.update(username="alice@example.org", password="nope")
    r = await smart.client.post("/oauth/authorize", data=fields)
    assert r.status_code == 401 and 'name="password"' in r.text and "Wrong username or password" in r.text
    assert ("login-failed", "failure") in await _audit_actions(smart)
