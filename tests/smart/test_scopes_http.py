"""Scope enforcement over HTTP with real access tokens from the authorization server (issue #5 tests;
catalog A04, A06, A11). Tokens come from the code flow and client_credentials of ``gateway.smart``
(``tests/smart/support.py`` drives them); nothing is minted by hand except where the test is about
a token the server must refuse."""

from __future__ import annotations

from typing import Any

from gateway.smart.clients import add_client
from gateway.smart.tokens import sign_access_token
from gateway.store.database import Database
from tests.api_support import APP_ID
from tests.smart.support import APP_REDIRECT, Smart, query_of

NOT_FOUND_BODY = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "not-found", "diagnostics": "Resource not found."}],
}


async def _labs(smart: Smart) -> dict[str, list[dict[str, Any]]]:
    r = await smart.api.find("LabResult", master=True, limit=1000)
    out: dict[str, list[dict[str, Any]]] = {}
    for row in r.json()["results"]:
        out.setdefault(row["patient"]["objectId"], []).append(row)
    return out


def _matches(body: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]


def _included(body: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in body.get("entry", [])
        if e["search"]["mode"] == "include"
    }


async def _ok(smart: Smart, path: str, token: str, **params: Any) -> dict[str, Any]:
    r = await smart.fhir(path, token, **params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_token_for_patient_a_cannot_read_patient_b(smart: Smart) -> None:
    alice, bob = smart.api.ids["alice:patient"], smart.api.ids["bob:patient"]
    labs = await _labs(smart)
    granted = await smart.tokens_for("alice", scope="openid fhirUser launch/patient patient/*.rs")
    assert granted["patient"] == alice
    token = granted["access_token"]
    bob_obs = labs[bob][0]["objectId"]

    assert (await smart.fhir(f"/fhir/Patient/{alice}", token)).status_code == 200
    missing = await smart.fhir("/fhir/Patient/doesnotexist0", token)
    for path in (
        f"/fhir/Patient/{bob}",
        f"/fhir/Observation/{bob_obs}",
        f"/fhir/Observation/{bob_obs}/_history",
        f"/fhir/Observation/{bob_obs}/_history/1",
    ):
        r = await smart.fhir(path, token)
        assert (r.status_code, r.json()) == (404, NOT_FOUND_BODY) == (missing.status_code, missing.json()), path

    # by search
    assert _matches(await _ok(smart, "/fhir/Observation", token, patient=bob)) == []
    assert _matches(await _ok(smart, "/fhir/Observation", token, _id=bob_obs)) == []
    assert _matches(await _ok(smart, "/fhir/Patient", token)) == [alice]
    # by _include / _revinclude
    body = await _ok(smart, "/fhir/Observation", token, _include="Observation:patient", _count="1000")
    assert _included(body) == {f"Patient/{alice}"}
    body = await _ok(smart, "/fhir/Patient", token, _id=f"{alice},{bob}", _revinclude="Observation:patient")
    assert _matches(body) == [alice]
    assert all(ref.startswith("Observation/") for ref in _included(body))
    assert {ref.split("/")[1] for ref in _included(body)} <= {r["objectId"] for r in labs[alice]}


async def test_provider_token_is_confined_by_scope_and_care_team(smart: Smart) -> None:
    """Dr. Smith is on Alice's care team only: user/ scopes reach Alice, never Bob (provider outside
    the care team); a patient-launch token reaches only the chosen patient."""
    alice, bob = smart.api.ids["alice:patient"], smart.api.ids["bob:patient"]
    labs = await _labs(smart)
    user_level = (await smart.tokens_for("smith", scope="openid fhirUser user/*.rs"))["access_token"]
    assert (await smart.fhir(f"/fhir/Patient/{alice}", user_level)).status_code == 200
    assert (await smart.fhir(f"/fhir/Patient/{bob}", user_level)).status_code == 404
    assert (await smart.fhir(f"/fhir/Observation/{labs[bob][0]['objectId']}", user_level)).status_code == 404
    seen = set(_matches(await _ok(smart, "/fhir/Observation", user_level, _count="1000")))
    assert seen == {r["objectId"] for r in labs[alice]}

    launched = await smart.tokens_for("smith", scope="openid fhirUser launch/patient patient/*.rs")
    assert launched["patient"] == alice  # the only patient on Dr. Smith's care team
    assert _matches(await _ok(smart, "/fhir/Patient", launched["access_token"])) == [alice]


async def test_too_few_scopes_is_403_naming_the_scope(smart: Smart) -> None:
    alice = smart.api.ids["alice:patient"]
    token = (await smart.tokens_for("alice", scope="launch/patient patient/Observation.rs"))["access_token"]
    r = await smart.fhir(f"/fhir/Patient/{alice}", token)
    assert r.status_code == 403
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "patient/Patient.r" in r.json()["issue"][0]["diagnostics"]
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    r = await smart.client.post(
        "/fhir/Observation",
        content=b'{"resourceType": "Observation"}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 403 and "patient/Observation.c" in r.json()["issue"][0]["diagnostics"]


async def test_v2_restricted_scope_reads_only_within_its_restriction(smart: Smart) -> None:
    alice = smart.api.ids["alice:patient"]
    scope = "openid fhirUser launch/patient patient/Patient.rs patient/Observation.rs?status=final"
    db = Database(smart.url)
    try:
        await add_client(db, "app-v2", redirect_uris=[APP_REDIRECT], scope=scope, client_type="public")
    finally:
        await db.dispose()
    granted = await smart.tokens_for("alice", client_id="app-v2", scope=scope)
    assert "patient/Observation.rs?status=final" in granted["scope"].split()
    token = granted["access_token"]
    labs = (await _labs(smart))[alice]
    final = {r["objectId"] for r in labs if r["status"] == "final"}
    corrected = {r["objectId"] for r in labs if r["status"] == "corrected"}
    assert final and corrected
    assert set(_matches(await _ok(smart, "/fhir/Observation", token, _count="1000"))) == final
    for oid in corrected:
        r = await smart.fhir(f"/fhir/Observation/{oid}", token)
        assert (r.status_code, r.json()) == (404, NOT_FOUND_BODY)
    body = await _ok(smart, "/fhir/Patient", token, _revinclude="Observation:patient", _count="1000")
    assert {ref.split("/")[1] for ref in _included(body)} == final


async def test_backend_token_is_limited_to_its_system_scopes(smart: Smart) -> None:
    alice = smart.api.ids["alice:patient"]
    labs = await _labs(smart)
    r = await smart.backend_token("system/Observation.rs")
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    everything = {row["objectId"] for rows in labs.values() for row in rows}
    assert set(_matches(await _ok(smart, "/fhir/Observation", token, _count="1000"))) == everything
    r = await smart.fhir(f"/fhir/Patient/{alice}", token)
    assert r.status_code == 403 and "system/Patient.r" in r.json()["issue"][0]["diagnostics"]
    body = dict((await smart.fhir(f"/fhir/Observation/{labs[alice][0]['objectId']}", token)).json())
    body.pop("meta", None)
    r = await smart.client.put(
        f"/fhir/Observation/{body['id']}",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 403 and "system/Observation.u" in r.json()["issue"][0]["diagnostics"]


async def test_expired_forged_and_revoked_tokens_are_401(smart: Smart) -> None:
    alice = smart.api.ids["alice:patient"]
    granted = await smart.tokens_for("alice", scope="launch/patient patient/*.rs")
    token = granted["access_token"]
    assert (await smart.fhir(f"/fhir/Patient/{alice}", token)).status_code == 200
    head, body, sig = token.split(".")
    forged = f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    expired = sign_access_token(
        smart.settings,
        client_id="app-public",
        subject=smart.api.ids["alice:user"],
        scope="patient/*.rs",
        lifetime=-10,
        patient=alice,
    ).token
    for bad in (forged, expired, "not-a-token", token + "x"):
        r = await smart.fhir(f"/fhir/Patient/{alice}", bad)
        assert r.status_code == 401, bad
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["resourceType"] == "OperationOutcome"
    # revocation is immediate (A11)
    r = await smart.client.post("/oauth/revoke", data={"token": token, "client_id": "app-public"})
    assert r.status_code == 200, r.text
    assert (await smart.fhir(f"/fhir/Patient/{alice}", token)).status_code == 401


async def test_native_door_does_not_accept_smart_tokens(smart: Smart) -> None:
    granted = await smart.tokens_for("alice", scope="launch/patient patient/*.rs")
    token = granted["access_token"]
    as_session = await smart.client.get(
        "/parse/classes/LabResult", headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": token}
    )
    assert as_session.status_code in (400, 401, 403), as_session.text
    assert as_session.json()["code"] == 209  # invalid session token
    as_bearer = await smart.client.get(
        "/parse/classes/LabResult", headers={"X-Parse-Application-Id": APP_ID, "Authorization": f"Bearer {token}"}
    )
    # a bearer header is no credential on the Parse door: the caller is anonymous and sees nothing
    assert as_bearer.status_code in (200, 401, 403, 404), as_bearer.text
    if as_bearer.status_code == 200:
        assert as_bearer.json()["results"] == []


async def test_patient_launch_by_a_provider_on_two_care_teams_sees_one_patient(smart: Smart) -> None:
    """The provider chooses Alice at launch; though Dr. Smith may see Bob too, the token may not."""
    alice, bob = smart.api.ids["alice:patient"], smart.api.ids["bob:patient"]
    api = smart.api
    current = (await api.get(f"/parse/classes/PatientProfile/{bob}", master=True)).json()
    team = [p["objectId"] for p in current.get("careTeam") or []] + [api.ids["smith:provider"]]
    r = await api.put(
        f"/parse/classes/PatientProfile/{bob}",
        {"careTeam": [{"__type": "Pointer", "className": "ProviderProfile", "objectId": p} for p in team]},
        master=True,
    )
    assert r.status_code == 200, r.text
    params = smart.authorize_params(scope="openid fhirUser launch/patient patient/*.rs")
    page = await smart.login(params, "smith")
    assert f'value="{alice}"' in page.text and f'value="{bob}"' in page.text
    done = await smart.consent(page, patient=alice)
    assert done.status_code == 302, done.text
    code = query_of(done.headers["location"])["code"]
    granted = (await smart.exchange(code, params)).json()
    assert granted["patient"] == alice
    token = granted["access_token"]
    labs = await _labs(smart)
    session = {"Authorization": f"Bearer {api.tokens['smith']}"}
    assert (await smart.client.get(f"/fhir/Patient/{bob}", headers=session)).status_code == 200
    assert (await smart.fhir(f"/fhir/Patient/{bob}", token)).status_code == 404
    assert (await smart.fhir(f"/fhir/Observation/{labs[bob][0]['objectId']}/_history", token)).status_code == 404
    assert _matches(await _ok(smart, "/fhir/Patient", token)) == [alice]
    assert _matches(await _ok(smart, "/fhir/Observation", token, patient=bob)) == []
    body = await _ok(smart, "/fhir/Patient", token, _id=f"{alice},{bob}", _revinclude="Observation:patient")
    assert {ref.split("/")[1] for ref in _included(body)} == {r["objectId"] for r in labs[alice]}
    # by type and system history
    history = await _ok(smart, "/fhir/Observation/_history", token, _count="1000")
    assert {e["fullUrl"].rsplit("/", 1)[1] for e in history.get("entry", [])} == {r["objectId"] for r in labs[alice]}
    everything = await _ok(smart, "/fhir/_history", token, _count="1000")
    assert bob not in {e["fullUrl"].rsplit("/", 1)[1] for e in everything.get("entry", [])}
    # through a transaction: a GET of Bob's record fails the whole Bundle
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{alice}"}},
            {"request": {"method": "GET", "url": f"Patient/{bob}"}},
        ],
    }
    r = await smart.client.post(
        "/fhir", json=bundle, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    )
    assert r.status_code == 404 and "Bundle.entry[1]" in r.text


async def test_record_rule_changes_apply_to_live_tokens_at_once(smart: Smart) -> None:
    """A11: removing Dr. Smith from Alice's care team, or deactivating the provider, takes effect
    on the next request made with a token issued before the change."""
    api = smart.api
    alice, smith = api.ids["alice:patient"], api.ids["smith:provider"]
    token = (await smart.tokens_for("smith", scope="openid fhirUser user/*.rs"))["access_token"]
    assert (await smart.fhir(f"/fhir/Patient/{alice}", token)).status_code == 200
    r = await api.put(f"/parse/classes/PatientProfile/{alice}", {"careTeam": []}, master=True)
    assert r.status_code == 200, r.text
    assert (await smart.fhir(f"/fhir/Patient/{alice}", token)).status_code == 404
    assert _matches(await _ok(smart, "/fhir/Observation", token)) == []

    r = await api.put(f"/parse/classes/ProviderProfile/{smith}", {"isActive": False}, master=True)
    assert r.status_code == 200, r.text
    r = await smart.fhir("/fhir/Practitioner", token)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
