"""SMART ``online_access``: the refresh token lives only as long as the sign-in that approved it.

The authorize page's sign-in is a ``_Session`` row; an online-only grant's refresh
tokens carry its id. Signing out on the page, or deleting the session through the
Parse door (the user's own session list), ends the refresh family; ``offline_access``
grants are not bound to the sign-in.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import select

from gateway.smart import store
from gateway.store.database import Database
from gateway.store.models import AuditLog, table_of
from tests.smart.support import PASSWORD, USERNAMES, Smart, form_fields

ONLINE = "launch/patient online_access patient/Observation.rs"
OFFLINE = "launch/patient offline_access patient/Observation.rs"


async def _refresh(smart: Smart, token: str) -> Any:
    return await smart.token({"grant_type": "refresh_token", "refresh_token": token, "client_id": "app-public"})


async def _sign_out(smart: Smart) -> Any:
    """Press "Sign out" on the consent page of the browser that is still signed in."""
    page = await smart.client.get("/oauth/authorize", params=smart.authorize_params(scope=ONLINE))
    assert page.status_code == 200 and 'value="logout"' in page.text, page.text
    fields = form_fields(page.text)
    fields["action"] = "logout"
    return await smart.client.post("/oauth/authorize", data=fields)


async def _signin_session(smart: Smart, refresh_token: str) -> str | None:
    db = Database(smart.url)
    try:
        async with db.read() as conn:
            return (
                await conn.execute(
                    select(store.refresh_t.c.sessionId).where(
                        store.refresh_t.c.tokenHash == store.digest(refresh_token)
                    )
                )
            ).scalar_one()
    finally:
        await db.dispose()


async def test_sign_out_ends_online_refresh_tokens_but_not_offline_ones(smart: Smart) -> None:
    offline = await smart.tokens_for("alice", scope=OFFLINE)
    online = await smart.tokens_for("alice", scope=ONLINE)  # a second sign-in; this browser keeps it
    assert await _signin_session(smart, offline["refresh_token"]) is None
    assert await _signin_session(smart, online["refresh_token"]) is not None
    rotated = await _refresh(smart, online["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    online = rotated.json()

    out = await _sign_out(smart)
    assert out.status_code == 200 and "You are signed out." in out.text and 'name="password"' in out.text
    # the browser is no longer signed in: the authorize page asks for the password again
    again = await smart.client.get("/oauth/authorize", params=smart.authorize_params(scope=ONLINE))
    assert 'name="password"' in again.text and 'name="decision"' not in again.text

    dead = await _refresh(smart, online["refresh_token"])
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
    assert (await smart.introspect(online["refresh_token"]))["active"] is False
    assert (await smart.fhir("/fhir/Observation", online["access_token"])).status_code == 401
    assert (await smart.fhir("/fhir/Observation", offline["access_token"])).status_code == 200
    kept = await _refresh(smart, offline["refresh_token"])  # offline_access survives the sign-out
    assert kept.status_code == 200, kept.text


async def test_deleting_the_signin_session_in_the_parse_door_ends_the_online_grant(smart: Smart) -> None:
    online = await smart.tokens_for("alice", scope=ONLINE)
    session_id = await _signin_session(smart, online["refresh_token"])
    mine = await smart.api.find("_Session", "alice")
    assert mine.status_code == 200, mine.text
    listed = {s["objectId"]: s for s in mine.json()["results"]}
    assert session_id in listed and listed[session_id]["createdWith"]["action"] == "login"
    assert (await smart.fhir("/fhir/Observation", online["access_token"])).status_code == 200
    r = await smart.api.delete(f"/parse/sessions/{session_id}", "alice")
    assert r.status_code == 200, r.text
    # the access token dies with the sign-in at once, before any refresh attempt
    assert (await smart.fhir("/fhir/Observation", online["access_token"])).status_code == 401
    assert (await smart.introspect(online["access_token"]))["active"] is False

    dead = await _refresh(smart, online["refresh_token"])
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
    # the family is revoked, and the refusal is audited
    assert (await smart.introspect(online["access_token"]))["active"] is False
    db = Database(smart.url)
    try:
        async with db.read() as conn:
            log = table_of(AuditLog)
            summaries = (
                (await conn.execute(select(log.c.summary).where(log.c.action == "oauth-revoke"))).scalars().all()
            )
    finally:
        await db.dispose()
    assert any("online_access" in s for s in summaries)


async def test_online_refresh_token_expires_with_the_signin(smart: Smart) -> None:
    online = await smart.tokens_for("alice", scope=ONLINE)
    offline = await smart.tokens_for("alice", scope=OFFLINE)
    online_exp = (await smart.introspect(online["refresh_token"]))["exp"]
    offline_exp = (await smart.introspect(offline["refresh_token"]))["exp"]
    assert online_exp <= time.time() + 86400 + 5
    assert offline_exp >= time.time() + (smart.settings.refresh_token_days - 1) * 86400


async def test_signin_of_another_user_cannot_be_signed_out_by_a_forged_form(smart: Smart) -> None:
    """The sign-out is a CSRF-protected form: without the browser's cookie it does nothing."""
    online = await smart.tokens_for("alice", scope=ONLINE)
    page = await smart.client.get("/oauth/authorize", params=smart.authorize_params(scope=ONLINE))
    fields = form_fields(page.text)
    smart.client.cookies.clear()
    fields["action"] = "logout"
    r = await smart.client.post("/oauth/authorize", data=fields)
    assert r.status_code == 403
    assert re.search(r"expired", r.text)
    assert (await _refresh(smart, online["refresh_token"])).status_code == 200


async def _sign_in_again(smart: Smart, who: str) -> None:
    """``prompt=login`` in the browser that is still signed in, then the password of ``who``."""
    page = await smart.client.get("/oauth/authorize", params=smart.authorize_params(scope=ONLINE, prompt="login"))
    assert 'name="password"' in page.text
    fields = form_fields(page.text)
    fields.update(username=USERNAMES[who], password=PASSWORD, action="login")
    consent = await smart.client.post("/oauth/authorize", data=fields)
    assert consent.status_code == 200 and 'name="decision"' in consent.text


async def test_another_person_signing_in_at_the_browser_ends_the_previous_signin(smart: Smart) -> None:
    alice = await smart.tokens_for("alice", scope=ONLINE)
    await _sign_in_again(smart, "alice")  # the same person again: their sign-in stands
    kept = await _refresh(smart, alice["refresh_token"])
    assert kept.status_code == 200, kept.text
    await _sign_in_again(smart, "bob")  # someone else at this browser: Alice's sign-in ends
    dead = await _refresh(smart, kept.json()["refresh_token"])
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
