"""FHIR read, capability, credentials and error shapes (DESIGN.md "Denied looks like absent")."""

from __future__ import annotations

import pytest

from gateway.fhir.registry import RESOURCES
from tests.api_support import Api
from tests.fhir.support import bearer, fget, lab, master_headers, valid

NOT_FOUND = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "not-found", "diagnostics": "Resource not found."}],
}


async def test_metadata_lists_exactly_the_registry(demo: Api) -> None:
    r = await demo.client.get("/fhir/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    cap = valid(r.json())
    assert cap["fhirVersion"] == "4.0.1" and cap["format"] == ["json", "application/fhir+json"]
    served = {res["type"]: res for res in cap["rest"][0]["resource"]}
    assert set(served) == set(RESOURCES)
    for name, rdef in RESOURCES.items():
        assert {i["code"] for i in served[name]["interaction"]} == {i.value for i in rdef.interactions}
        assert {p["name"] for p in served[name]["searchParam"]} == set(rdef.params)
    assert {i["code"] for i in served["AuditEvent"]["interaction"]} == {"read", "search-type"}
    assert {"patient", "code", "date", "status", "category", "_id", "_lastUpdated"} <= {
        p["name"] for p in served["Observation"]["searchParam"]
    }


async def test_every_served_interaction_route_exists(demo: Api) -> None:
    """A type the registry does not serve answers 404; an interaction it does not list answers 405."""
    r = await demo.client.put("/fhir/AuditEvent/abc", headers=master_headers(), json={})
    assert r.status_code == 405 and r.json()["resourceType"] == "OperationOutcome"
    r = await demo.client.get("/fhir/Encounter/abc", headers=master_headers())
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


async def test_alice_reads_her_patient_with_version_headers(demo: Api) -> None:
    pid = demo.ids["alice:patient"]
    r = await fget(demo, f"/fhir/Patient/{pid}", "alice")
    assert r.status_code == 200, r.text
    patient = valid(r.json())
    assert patient["id"] == pid and patient["identifier"][0]["value"] == "DEMO-0001"
    assert r.headers["etag"] == f'W/"{patient["meta"]["versionId"]}"'
    assert r.headers["last-modified"].endswith("GMT")


@pytest.mark.parametrize("who", ["alice", "jones"])
async def test_hidden_patient_answers_like_a_missing_one(demo: Api, who: str) -> None:
    target = demo.ids["bob:patient"] if who == "alice" else demo.ids["alice:patient"]
    hidden = await fget(demo, f"/fhir/Patient/{target}", who)
    missing = await fget(demo, "/fhir/Patient/doesNotExist", who)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == NOT_FOUND
    assert hidden.headers["content-type"] == missing.headers["content-type"]


async def test_observation_reads_follow_publication(demo: Api) -> None:
    prelim = await lab(demo)
    assert (await fget(demo, f"/fhir/Observation/{prelim}", "smith")).status_code == 200
    r = await fget(demo, f"/fhir/Observation/{prelim}", "alice")
    assert r.status_code == 404 and r.json() == NOT_FOUND
    assert (await fget(demo, f"/fhir/Observation/{prelim}", "jones")).status_code == 404
    await demo.put(f"/parse/classes/LabResult/{prelim}", {"status": "final"}, "smith")
    r = await fget(demo, f"/fhir/Observation/{prelim}", "alice")
    assert r.status_code == 200
    obs = valid(r.json())
    assert obs["status"] == "final" and obs["subject"] == {"reference": f"Patient/{demo.ids['alice:patient']}"}


async def test_every_resource_type_reads_validly_as_admin(demo: Api) -> None:
    for rtype in RESOURCES:
        r = await fget(demo, f"/fhir/{rtype}", "admin", _count="3")
        assert r.status_code == 200, (rtype, r.text)
        bundle = valid(r.json())
        for entry in bundle.get("entry", []):
            one = await fget(demo, f"/fhir/{rtype}/{entry['resource']['id']}", "admin")
            assert one.status_code == 200 and valid(one.json()) == entry["resource"]


async def test_communication_participants_resolve_to_profiles(demo: Api) -> None:
    bundle = valid((await fget(demo, "/fhir/Communication", "alice")).json())
    refs = {e["resource"]["sender"]["reference"] for e in bundle["entry"]}
    assert refs == {f"Patient/{demo.ids['alice:patient']}", f"Practitioner/{demo.ids['smith:provider']}"}


async def test_audit_event_is_for_admins_only(demo: Api) -> None:
    assert (await fget(demo, "/fhir/AuditEvent", "alice")).status_code == 403
    r = await fget(demo, "/fhir/AuditEvent", "admin", _count="2")
    assert r.status_code == 200 and valid(r.json())["entry"]
    assert (await fget(demo, "/fhir/AuditEvent", "master", _count="2")).status_code == 200


async def test_credentials(demo: Api) -> None:
    pid = demo.ids["alice:patient"]
    r = await demo.client.get(f"/fhir/Patient/{pid}")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert valid(r.json())["issue"][0]["code"] == "login"
    r = await demo.client.get(f"/fhir/Patient/{pid}", headers={"Authorization": "Bearer r:not-a-session"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = await demo.client.get(f"/fhir/Patient/{pid}", headers={"Authorization": "Basic YTpi"})
    assert r.status_code == 401
    r = await demo.client.get(f"/fhir/Patient/{pid}", headers={"X-Parse-Session-Token": demo.tokens["alice"]})
    assert r.status_code == 200
    r = await demo.client.get(f"/fhir/Patient/{pid}", headers=master_headers())
    assert r.status_code == 200
    bad = {**master_headers(), "X-Parse-Master-Key": "wrong"}
    assert (await demo.client.get(f"/fhir/Patient/{pid}", headers=bad)).status_code == 401
    no_app = {"X-Parse-Master-Key": master_headers()["X-Parse-Master-Key"]}
    assert (await demo.client.get(f"/fhir/Patient/{pid}", headers=no_app)).status_code == 401


async def test_formats(demo: Api) -> None:
    pid = demo.ids["alice:patient"]
    h = bearer(demo, "alice")
    for fmt in ("xml", "application/fhir+xml", "text/html"):
        r = await demo.client.get(f"/fhir/Patient/{pid}", headers=h, params={"_format": fmt})
        assert r.status_code == 406 and valid(r.json())["issue"][0]["code"] == "not-supported"
    r = await demo.client.get(f"/fhir/Patient/{pid}", headers={**h, "Accept": "application/fhir+xml"})
    assert r.status_code == 406
    for fmt in ("json", "application/fhir+json", "application/json"):
        r = await demo.client.get(f"/fhir/Patient/{pid}", headers=h, params={"_format": fmt})
        assert r.status_code == 200
    r = await demo.client.get(f"/fhir/Patient/{pid}", headers={**h, "Accept": "application/fhir+json"})
    assert r.status_code == 200
    pretty = await demo.client.get(f"/fhir/Patient/{pid}", headers=h, params={"_pretty": "true"})
    assert pretty.status_code == 200 and "\n" in pretty.text and pretty.json() == r.json()
