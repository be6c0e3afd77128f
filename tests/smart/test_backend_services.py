"""SMART Backend Services: client_credentials with private_key_jwt (catalog B04, B08), and POST /hl7v2 with it."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import select

from gateway.store.database import Database
from gateway.store.models import Hl7Message, table_of
from tests.hl7v2.support import FIXTURES, msa, wire
from tests.smart.support import BASE, Smart, assertion

ER7 = "x-application/hl7-v2+er7"


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_backend_gets_a_short_lived_system_token(smart: Smart, alg: str) -> None:
    r = await smart.backend_token("system/Observation.rs", alg=alg)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "system/Observation.rs"
    assert 0 < body["expires_in"] <= 300
    assert "refresh_token" not in body and "patient" not in body
    obs = await smart.fhir("/fhir/Observation", body["access_token"])
    assert obs.status_code == 200, obs.text
    patients = await smart.fhir("/fhir/Patient", body["access_token"])
    assert patients.status_code == 403  # only Observation was granted
    info = await smart.client.post(
        "/oauth/introspect",
        data={
            "token": body["access_token"],
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(),
        },
    )
    assert info.status_code == 200, info.text
    assert info.json()["active"] is True and info.json()["client_id"] == "backend"


async def test_scope_beyond_registration_or_not_system_is_refused(smart: Smart) -> None:
    r = await smart.backend_token("patient/Observation.rs")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = await smart.backend_token("system/Patient.cruds")
    assert r.status_code == 200  # cut down to what the registration allows (system/*.rs)
    assert r.json()["scope"] == "system/Patient.rs"


async def _refused(smart: Smart, **kw: object) -> str:
    r = await smart.backend_token(**kw)  # type: ignore[arg-type]
    assert r.status_code in (400, 401), r.text
    return str(r.json()["error"])


async def test_assertion_replay_is_refused(smart: Smart) -> None:
    r = await smart.backend_token(jti="same-jti-1")
    assert r.status_code == 200
    assert await _refused(smart, jti="same-jti-1") == "invalid_client"


async def test_assertion_exp_more_than_five_minutes_ahead_is_refused(smart: Smart) -> None:
    assert await _refused(smart, exp_in=600) == "invalid_client"
    assert await _refused(smart, exp_in=-120) == "invalid_client"


async def test_assertion_wrong_audience_is_refused(smart: Smart) -> None:
    assert await _refused(smart, aud=BASE + "/fhir") == "invalid_client"
    assert await _refused(smart, aud="https://elsewhere.example/oauth/token") == "invalid_client"


async def test_assertion_with_other_algorithms_or_keys_is_refused(smart: Smart) -> None:
    assert await _refused(smart, alg="RS256") == "invalid_client"
    stranger = RSAKey.generate_key(2048, private=True)
    assert await _refused(smart, key=stranger) == "invalid_client"
    assert await _refused(smart, alg="ES384", key=ECKey.generate_key("P-384", private=True)) == "invalid_client"
    now = int(time.time())
    claims = {"iss": "backend", "sub": "backend", "aud": BASE + "/oauth/token", "exp": now + 60, "jti": "n1"}
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    r = await smart.token(
        {
            "grant_type": "client_credentials",
            "scope": "system/Observation.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": unsigned,
        }
    )
    assert r.status_code in (400, 401)


async def test_public_client_cannot_use_client_credentials(smart: Smart) -> None:
    r = await smart.token({"grant_type": "client_credentials", "scope": "system/*.rs", "client_id": "app-public"})
    assert r.status_code in (400, 401)


async def test_hl7v2_accepts_a_backend_token_with_observation_write(smart: Smart) -> None:
    token = (await smart.backend_token("system/Observation.cruds")).json()["access_token"]
    msg = wire(FIXTURES / "cbc-sunquest.hl7")
    r = await smart.client.post(
        "/hl7v2", content=msg, headers={"Authorization": f"Bearer {token}", "Content-Type": ER7}
    )
    assert r.status_code in (200, 422), r.text
    assert msa(r.content)[1] in ("AA", "AE")
    db = Database(smart.url)
    try:
        async with db.read() as conn:
            feeds = (await conn.execute(select(table_of(Hl7Message).c.feed))).scalars().all()
    finally:
        await db.dispose()
    assert feeds == ["client:backend"]
    read_only = (await smart.backend_token("system/Observation.rs")).json()["access_token"]
    r = await smart.client.post(
        "/hl7v2", content=msg, headers={"Authorization": f"Bearer {read_only}", "Content-Type": ER7}
    )
    assert r.status_code == 403
    r = await smart.client.post("/hl7v2", content=msg, headers={"Authorization": "Bearer a.b.c", "Content-Type": ER7})
    assert r.status_code == 401
