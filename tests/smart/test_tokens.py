"""Access and refresh tokens: JWT pitfalls (B07), lifetimes (B08), refresh rotation (B06),
introspection and revocation (A11), EHR launch, discovery and key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.signing_keys import KeyRing
from gateway.smart.tokens import keyring
from tests.smart.support import BASE, FHIR, Smart, query_of


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _resign(smart: Smart, claims: dict[str, Any], key: RSAKey | None = None, **header: Any) -> str:
    ring = keyring(smart.settings)
    head = {"alg": "RS256", "typ": "at+jwt", "kid": ring.kid, **header}
    return jwt.encode(head, claims, key or ring.current, algorithms=["RS256"])


async def _status(smart: Smart, token: str) -> int:
    r = await smart.fhir("/fhir/Observation", token)
    if r.status_code == 401:
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    return int(r.status_code)


async def test_forged_and_tampered_tokens_are_401(smart: Smart) -> None:
    tok = await smart.tokens_for("alice")
    good = tok["access_token"]
    claims = _claims(good)
    ring = keyring(smart.settings)
    assert await _status(smart, good) == 200
    assert await _status(smart, _resign(smart, claims)) == 200  # the control: a faithful re-signing works

    none_token = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": ring.kid}).encode()) + "."
    none_token += _b64(json.dumps(claims).encode()) + "."
    public_pem = ring.current.as_pem(private=False)
    head = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": ring.kid}).encode())
    body = _b64(json.dumps(claims).encode())
    hs = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    hs256 = f"{head}.{body}.{_b64(hs)}"
    other_key = RSAKey.generate_key(2048, private=True)
    now = int(time.time())
    cases = {
        "alg none": none_token,
        "HS256 with the public key": hs256,
        "other key, same kid": _resign(smart, claims, other_key),
        "unknown kid": _resign(smart, claims, kid="nope"),
        "path kid": _resign(smart, claims, kid="../../dev/null"),
        "sql kid": _resign(smart, claims, kid="' OR 1=1--"),
        "jku header": _resign(smart, claims, jku="http://127.0.0.1:1/jwks", kid="attacker"),
        "expired": _resign(smart, {**claims, "exp": now - 1}),
        "nbf future": _resign(smart, {**claims, "nbf": now + 600}),
        "iat future": _resign(smart, {**claims, "iat": now + 3600}),
        "wrong iss": _resign(smart, {**claims, "iss": "https://evil.example"}),
        "wrong aud": _resign(smart, {**claims, "aud": "https://other.example/fhir"}),
        "unknown jti": _resign(smart, {**claims, "jti": "0" * 32}),
        "id token": tok["id_token"],
        "truncated signature": good[:-10],
        "edited payload": good.split(".")[0]
        + "."
        + _b64(json.dumps({**claims, "patient": "x"}).encode())
        + "."
        + good.split(".")[2],
        "garbage": "not-a-token",
    }
    for name, token in cases.items():
        assert await _status(smart, token) == 401, name


async def test_lifetimes(smart: Smart) -> None:
    tok = await smart.tokens_for("alice")
    claims = _claims(tok["access_token"])
    assert claims["exp"] - claims["iat"] == tok["expires_in"] <= 3600
    backend = (await smart.backend_token()).json()
    assert backend["expires_in"] <= 300
    assert _claims(backend["access_token"])["exp"] - _claims(backend["access_token"])["iat"] <= 300


async def _refresh(smart: Smart, token: str, client_id: str = "app-public", **extra: str) -> Any:
    return await smart.token({"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id, **extra})


async def test_refresh_rotates_and_reuse_revokes_the_family(smart: Smart) -> None:
    tok = await smart.tokens_for("alice")
    first = await _refresh(smart, tok["refresh_token"])
    assert first.status_code == 200, first.text
    new = first.json()
    assert new["refresh_token"] != tok["refresh_token"]
    assert new["patient"] == tok["patient"] and new["scope"] == tok["scope"]
    assert await _status(smart, new["access_token"]) == 200
    reuse = await _refresh(smart, tok["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert await _status(smart, new["access_token"]) == 401
    assert await _status(smart, tok["access_token"]) == 401
    after = await _refresh(smart, new["refresh_token"])
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


async def test_refresh_cannot_widen_scope_or_change_client(smart: Smart) -> None:
    tok = await smart.tokens_for("alice")
    wider = await _refresh(smart, tok["refresh_token"], scope=tok["scope"] + " patient/*.rs")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    other = await _refresh(smart, tok["refresh_token"], client_id="app-other")
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    narrower = await _refresh(smart, tok["refresh_token"], scope="launch/patient offline_access patient/Patient.rs")
    assert narrower.status_code == 200, narrower.text
    assert set(narrower.json()["scope"].split()) == {"launch/patient", "offline_access", "patient/Patient.rs"}


async def test_introspection(smart: Smart) -> None:
    tok = await smart.tokens_for("alice")
    info = await smart.introspect(tok["access_token"])
    assert info["active"] is True
    assert info["client_id"] == "app-public" and info["patient"] == tok["patient"]
    assert info["scope"] == tok["scope"] and info["exp"] > time.time()
    assert info["fhirUser"] == f"{FHIR}/Patient/{tok['patient']}"
    assert (await smart.introspect(tok["refresh_token"]))["active"] is True
    assert (await smart.introspect("garbage"))["active"] is False
    assert (await smart.introspect(tok["access_token"], client_id="app-other"))["active"] is False


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
async def test_revocation_is_immediate(smart: Smart, which: str) -> None:
    tok = await smart.tokens_for("alice")
    r = await smart.client.post("/oauth/revoke", data={"token": tok[which], "client_id": "app-public"})
    assert r.status_code == 200
    assert await _status(smart, tok["access_token"]) == 401
    assert (await smart.introspect(tok["access_token"]))["active"] is False
    refresh = await _refresh(smart, tok["refresh_token"])
    assert refresh.status_code == 400


async def test_ehr_launch(smart: Smart) -> None:
    alice, bob = smart.api.ids["alice:patient"], smart.api.ids["bob:patient"]
    r = await smart.api.post("/parse/functions/createSmartLaunch", {"patientId": bob}, "smith")
    assert r.status_code == 404 or r.json().get("code") in (101, 141)  # not on Dr Smith's care team
    r = await smart.api.post("/parse/functions/createSmartLaunch", {"patientId": alice}, "smith")
    assert r.status_code == 200, r.text
    launch = r.json()["result"]["launch"]
    scope = "launch openid fhirUser patient/Observation.rs"
    code, params = await smart.code_for("smith", scope=scope, launch=launch)
    tok = (await smart.exchange(code, params)).json()
    assert tok["patient"] == alice and tok["need_patient_banner"] is False
    assert "launch" in tok["scope"].split()
    again = await smart.client.get(
        "/oauth/authorize", params=smart.authorize_params(scope=scope, launch=launch), follow_redirects=False
    )
    assert query_of(again.headers["location"])["error"] == "invalid_request"  # single use


async def test_discovery_documents(smart: Smart) -> None:
    conf = (await smart.client.get("/fhir/.well-known/smart-configuration")).json()
    assert conf["issuer"] == BASE
    assert conf["token_endpoint"] == BASE + "/oauth/token"
    assert conf["authorization_endpoint"] == BASE + "/oauth/authorize"
    assert set(conf["token_endpoint_auth_methods_supported"]) == {"none", "client_secret_basic", "private_key_jwt"}
    assert conf["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
    for cap in (
        "launch-ehr",
        "launch-standalone",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "permission-v1",
        "permission-v2",
        "authorize-post",
        "context-passthrough-banner",
    ):
        assert cap in conf["capabilities"]
    oidc = (await smart.client.get("/.well-known/openid-configuration")).json()
    assert oidc["jwks_uri"] == BASE + "/.well-known/jwks.json"
    jwks = (await smart.client.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [keyring(smart.settings).kid]
    assert all("d" not in k for k in jwks["keys"])
    cap = (await smart.client.get("/fhir/metadata")).json()
    ext = cap["rest"][0]["security"]["extension"][0]
    assert ext["url"].endswith("oauth-uris")
    assert {e["url"]: e["valueUri"] for e in ext["extension"]}["token"] == BASE + "/oauth/token"


async def test_authorize_by_post(smart: Smart) -> None:
    params = smart.authorize_params()
    r = await smart.client.post("/oauth/authorize", data=params)
    assert r.status_code == 200 and 'name="username"' in r.text


async def test_key_rotation_keeps_old_tokens_valid(smart: Smart) -> None:
    tok = await smart.tokens_for("alice")
    old_kid = keyring(smart.settings).kid
    ring = KeyRing(smart.settings.signing_key_file, 3660)
    new_kid = ring.rotate()
    assert new_kid != old_kid
    assert keyring(smart.settings).kid == new_kid
    kids = [k["kid"] for k in (await smart.client.get("/.well-known/jwks.json")).json()["keys"]]
    assert kids == [new_kid, old_kid]
    assert await _status(smart, tok["access_token"]) == 200
    fresh = await smart.tokens_for("alice")
    assert json.loads(base64.urlsafe_b64decode(fresh["access_token"].split(".")[0] + "=="))["kid"] == new_kid
    assert await _status(smart, fresh["access_token"]) == 200


async def test_refresh_token_expiry_is_enforced(smart: Smart) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from gateway.smart import store
    from gateway.store.database import Database

    tok = await smart.tokens_for("alice")
    db = Database(smart.url)
    try:
        async with db.write() as conn:
            await conn.execute(
                update(store.refresh_t)
                .where(store.refresh_t.c.tokenHash == store.digest(tok["refresh_token"]))
                .values(expiresAt=store.utcnow() - timedelta(seconds=1))
            )
    finally:
        await db.dispose()
    r = await _refresh(smart, tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_token_endpoint_wants_a_form(smart: Smart) -> None:
    r = await smart.client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert r.headers["cache-control"] == "no-store"


async def test_signed_in_browser_skips_login_unless_prompt_login(smart: Smart) -> None:
    params = smart.authorize_params()
    await smart.login(params, "alice")
    again = await smart.client.get("/oauth/authorize", params=smart.authorize_params())
    assert again.status_code == 200 and 'name="decision"' in again.text
    forced = await smart.client.get("/oauth/authorize", params=smart.authorize_params(prompt="login"))
    assert forced.status_code == 200 and 'name="password"' in forced.text and 'name="decision"' not in forced.text


async def test_jku_and_x5u_headers_are_never_fetched(smart: Smart) -> None:
    import socket

    tok = await smart.tokens_for("alice")
    claims = _claims(tok["access_token"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/keys"
    try:
        attacker = RSAKey.generate_key(2048, private=True)
        for header in ({"jku": url}, {"x5u": url}, {"jku": url, "kid": "attacker"}):
            token = _resign(smart, claims, attacker, **header)
            assert await _status(smart, token) == 401
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
