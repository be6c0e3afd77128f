"""SMART details the line-by-line review of issue #5 found untested: a whole flow started by POST
(``authorize-post``), id_token claims, introspection of expired and rotated tokens, a bad client
secret, SMART v1 scopes end to end (``permission-v1``), ``need_patient_banner`` for a provider, and
a discovery capability list that is exactly what the server does."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from html import unescape
from typing import Any

from joserfc import jws, jwt
from joserfc.jwk import KeySet
from sqlalchemy import update

from gateway.smart import store
from gateway.store.database import Database
from tests.smart.support import APP_REDIRECT, FHIR, PASSWORD, USERNAMES, Smart, form_fields, query_of


async def _keys(smart: Smart) -> KeySet:
    return KeySet.import_key_set((await smart.client.get("/.well-known/jwks.json")).json())


async def test_a_whole_code_flow_started_by_post(smart: Smart) -> None:
    """``authorize-post``: the app POSTs the authorization request; every later step is a form too."""
    params = smart.authorize_params()
    smart.client.cookies.clear()
    page = await smart.client.post("/oauth/authorize", data=params)
    assert page.status_code == 200 and 'name="password"' in page.text
    fields = form_fields(page.text)
    assert {k: fields[k] for k in params} == params  # the request travels on, untouched
    fields.update(username=USERNAMES["alice"], password=PASSWORD, action="login")
    consent = await smart.client.post("/oauth/authorize", data=fields)
    assert consent.status_code == 200 and 'name="decision"' in consent.text
    done = await smart.consent(consent)
    assert done.status_code == 302
    q = query_of(done.headers["location"])
    assert done.headers["location"].startswith(APP_REDIRECT + "?") and q["state"] == params["state"]
    tok = await smart.exchange(q["code"], params)
    assert tok.status_code == 200, tok.text
    assert tok.json()["patient"] == smart.api.ids["alice:patient"]


async def test_id_token_claims(smart: Smart) -> None:
    nonce = "n-" + str(time.time_ns())
    tok = await smart.tokens_for("smith", nonce=nonce, scope="openid fhirUser launch/patient patient/Observation.rs")
    header = jws.extract_compact(tok["id_token"].encode()).headers()
    jwks = await _keys(smart)
    assert header["alg"] == "RS256" and header["kid"] in {k.kid for k in jwks.keys}
    claims = jwt.decode(tok["id_token"], jwks, algorithms=["RS256"]).claims
    now = time.time()
    assert claims["sub"] == smart.api.ids["dr.smith:user"]
    assert claims["nonce"] == nonce
    assert claims["fhirUser"] == f"{FHIR}/Practitioner/{smart.api.ids['smith:provider']}"
    assert claims["iss"] == "http://testserver.local"
    assert claims["aud"] in ("app-public", ["app-public"])
    assert claims["iat"] <= now + 1 and now < claims["exp"] <= now + 3600 + 1
    assert tok["need_patient_banner"] is True  # standalone: the app shows who the patient is

    without = await smart.tokens_for("alice", scope="openid launch/patient patient/Observation.rs")
    claims = jwt.decode(without["id_token"], jwks, algorithms=["RS256"]).claims
    assert "fhirUser" not in claims  # only with the fhirUser scope


async def _expire(smart: Smart, table: Any, column: Any, value: str) -> None:
    db = Database(smart.url)
    try:
        async with db.write() as conn:
            await conn.execute(
                update(table).where(column == value).values(expiresAt=store.utcnow() - timedelta(seconds=1))
            )
    finally:
        await db.dispose()


async def test_introspection_says_inactive_for_expired_and_rotated_tokens(smart: Smart) -> None:
    tok = await smart.tokens_for("alice")
    jti = jwt.decode(tok["access_token"], await _keys(smart), algorithms=["RS256"]).claims["jti"]
    await _expire(smart, store.access_t, store.access_t.c.jti, jti)
    assert (await smart.introspect(tok["access_token"]))["active"] is False
    assert (await smart.fhir("/fhir/Observation", tok["access_token"])).status_code == 401

    rotated = await smart.token(
        {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "client_id": "app-public"}
    )
    assert rotated.status_code == 200
    assert (await smart.introspect(tok["refresh_token"]))["active"] is False  # spent by rotation
    fresh = rotated.json()
    assert (await smart.introspect(fresh["refresh_token"]))["active"] is True
    await _expire(smart, store.refresh_t, store.refresh_t.c.tokenHash, store.digest(fresh["refresh_token"]))
    assert (await smart.introspect(fresh["refresh_token"]))["active"] is False


async def test_bad_client_secret_is_invalid_client(smart: Smart) -> None:
    code, params = await smart.code_for("alice", client_id="app-conf")
    r = await smart.exchange(code, params, auth=("app-conf", "not-the-secret"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    ok = await smart.exchange(code, params, auth=("app-conf", smart.secret))
    assert ok.status_code == 200, ok.text  # the refused attempt did not spend the code


async def test_v1_scopes_end_to_end(smart: Smart) -> None:
    """``permission-v1``: ``patient/Observation.read`` reads and searches Observations, nothing else."""
    tok = await smart.tokens_for("alice", scope="launch/patient patient/Observation.read")
    assert set(tok["scope"].split()) == {"launch/patient", "patient/Observation.read"}
    found = await smart.fhir("/fhir/Observation", tok["access_token"])
    assert found.status_code == 200 and found.json().get("entry"), found.text
    obs_id = found.json()["entry"][0]["resource"]["id"]
    assert (await smart.fhir(f"/fhir/Observation/{obs_id}", tok["access_token"])).status_code == 200
    denied = await smart.fhir(f"/fhir/Patient/{tok['patient']}", tok["access_token"])
    assert denied.status_code == 403
    assert "Patient" in denied.text


async def test_consent_page_lists_scopes_in_plain_words(smart: Smart) -> None:
    consent = await smart.login(
        smart.authorize_params(scope="launch/patient online_access patient/Observation.rs"), "alice"
    )
    text = unescape(re.sub(r"<[^>]+>", " ", consent.text))
    assert "Keep access while you are signed in" in text
    assert "lab results" in text


async def test_discovery_capabilities_are_exactly_what_works(smart: Smart) -> None:
    conf = (await smart.client.get("/fhir/.well-known/smart-configuration")).json()
    assert set(conf["capabilities"]) == {
        "launch-ehr",
        "launch-standalone",
        "authorize-post",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "context-passthrough-banner",
        "context-ehr-patient",
        "context-standalone-patient",
        "permission-offline",
        "permission-online",
        "permission-patient",
        "permission-user",
        "permission-v1",
        "permission-v2",
    }
    assert conf["response_types_supported"] == ["code"]
    assert conf["introspection_endpoint"].endswith("/oauth/introspect")
    assert conf["revocation_endpoint"].endswith("/oauth/revoke")
    assert conf["jwks_uri"].endswith("/.well-known/jwks.json")
    assert "online_access" in conf["scopes_supported"] and "offline_access" in conf["scopes_supported"]


async def test_revocation_by_the_client_is_audited(smart: Smart) -> None:
    from sqlalchemy import select

    from gateway.store.models import AuditLog, table_of

    tok = await smart.tokens_for("alice")
    r = await smart.client.post("/oauth/revoke", data={"token": tok["refresh_token"], "client_id": "app-public"})
    assert r.status_code == 200
    db = Database(smart.url)
    try:
        async with db.read() as conn:
            log = table_of(AuditLog)
            rows = (
                await conn.execute(
                    select(log.c.outcome, log.c.clientId, log.c.actor).where(log.c.action == "oauth-revoke")
                )
            ).all()
    finally:
        await db.dispose()
    assert [(r.outcome, r.clientId, r.actor) for r in rows] == [("success", "app-public", smart.api.ids["alice:user"])]


async def test_an_expired_ehr_launch_is_refused(smart: Smart) -> None:
    alice = smart.api.ids["alice:patient"]
    r = await smart.api.post("/parse/functions/createSmartLaunch", {"patientId": alice}, "smith")
    assert r.status_code == 200, r.text
    launch = r.json()["result"]["launch"]
    await _expire(smart, store.launches_t, store.launches_t.c.launchHash, store.digest(launch))
    params = smart.authorize_params(scope="launch openid fhirUser patient/Observation.rs", launch=launch)
    refused = await smart.client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert refused.status_code == 302
    q = query_of(refused.headers["location"])
    assert q["error"] == "invalid_request" and "code" not in q
