"""Authorization code flow end to end: sign-in, consent, code, tokens, FHIR reads (SMART App Launch 2)."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.smart.support import APP_REDIRECT, FHIR, Smart, query_of


async def _keys(smart: Smart) -> KeySet:
    r = await smart.client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return KeySet.import_key_set(r.json())


async def test_patient_standalone_launch_gets_own_context_and_reads_own_observations(smart: Smart) -> None:
    tok = await smart.tokens_for("alice")
    alice = smart.api.ids["alice:patient"]
    assert tok["token_type"] == "Bearer"
    assert tok["patient"] == alice
    assert tok["need_patient_banner"] is True
    assert 0 < tok["expires_in"] <= 3600
    assert set(tok["scope"].split()) == {
        "openid",
        "fhirUser",
        "launch/patient",
        "offline_access",
        "patient/Observation.rs",
        "patient/Patient.rs",
    }
    assert tok["refresh_token"]
    id_token = jwt.decode(tok["id_token"], await _keys(smart), algorithms=["RS256"])
    assert id_token.claims["aud"] == ["app-public"] or id_token.claims["aud"] == "app-public"
    assert id_token.claims["fhirUser"] == f"{FHIR}/Patient/{alice}"
    assert id_token.claims["iss"] == "http://testserver.local"
    access = jwt.decode(tok["access_token"], await _keys(smart), algorithms=["RS256"]).claims
    assert access["aud"] == FHIR and access["patient"] == alice and access["client_id"] == "app-public"
    assert access["sub"] == smart.api.ids["alice:user"]

    r = await smart.fhir("/fhir/Observation", tok["access_token"], patient=alice)
    assert r.status_code == 200, r.text
    r = await smart.fhir(f"/fhir/Patient/{alice}", tok["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["id"] == alice


async def test_provider_picks_a_care_team_patient(smart: Smart) -> None:
    params = smart.authorize_params()
    page = await smart.login(params, "smith")
    alice, bob = smart.api.ids["alice:patient"], smart.api.ids["bob:patient"]
    assert f'<option value="{alice}">' in page.text
    assert bob not in page.text  # not on Dr Smith's care team
    refused = await smart.consent(page, patient=bob)
    assert refused.status_code == 400
    page = await smart.login(params, "smith")
    done = await smart.consent(page, patient=alice)
    assert done.status_code == 302
    code = query_of(done.headers["location"])["code"]
    r = await smart.exchange(code, params)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["patient"] == alice
    claims = jwt.decode(tok["id_token"], await _keys(smart), algorithms=["RS256"]).claims
    assert claims["fhirUser"] == f"{FHIR}/Practitioner/{smart.api.ids['smith:provider']}"


async def test_consent_deselection_narrows_the_granted_scope(smart: Smart) -> None:
    params = smart.authorize_params()
    page = await smart.login(params, "alice")
    done = await smart.consent(page, scopes=["launch/patient", "patient/Observation.rs"])
    code = query_of(done.headers["location"])["code"]
    r = await smart.exchange(code, params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"].split() == ["launch/patient", "patient/Observation.rs"]
    assert "refresh_token" not in body and "id_token" not in body
    denied = await smart.fhir(f"/fhir/Patient/{smart.api.ids['alice:patient']}", body["access_token"])
    assert denied.status_code == 403


async def test_deny_redirects_with_access_denied_and_state(smart: Smart) -> None:
    params = smart.authorize_params()
    page = await smart.login(params, "alice")
    done = await smart.consent(page, decision="deny")
    assert done.status_code == 302
    q = query_of(done.headers["location"])
    assert done.headers["location"].startswith(APP_REDIRECT)
    assert q["error"] == "access_denied" and q["state"] == params["state"] and "code" not in q


async def test_confidential_client_with_basic_auth(smart: Smart) -> None:
    code, params = await smart.code_for("alice", client_id="app-conf")
    r = await smart.exchange(code, params, auth=("app-conf", smart.secret))
    assert r.status_code == 200, r.text
    bad = await smart.code_for("alice", client_id="app-conf")
    r = await smart.exchange(bad[0], bad[1], auth=("app-conf", "wrong-secret"))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
