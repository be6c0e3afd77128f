"""FHIR create/update/delete through ``Records`` (same policy and audit as the native door)."""

from __future__ import annotations

from typing import Any

from tests.api_support import Api
from tests.fhir.support import FHIR_JSON, bearer, fget, lab, valid


def _observation(demo: Api, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "preliminary",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}], "text": "Glucose"},
        "subject": {"reference": f"Patient/{demo.ids['alice:patient']}"},
        "effectiveDateTime": "2026-02-03T04:05:06Z",
        "valueQuantity": {"value": 99, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    }
    body.update(changes)
    return body


async def _send(demo: Api, method: str, path: str, who: str, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else None
    h = {**bearer(demo, who), "Content-Type": FHIR_JSON, **headers}
    if content is None:
        import json

        content = json.dumps(body).encode()
    return await demo.client.request(method, path, content=content, headers=h)


async def test_create_read_update_delete(demo: Api) -> None:
    r = await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo))
    assert r.status_code == 201, r.text
    created = valid(r.json())
    oid = created["id"]
    assert r.headers["location"] == f"http://testserver.local/fhir/Observation/{oid}/_history/1"
    assert r.headers["etag"] == 'W/"1"' and created["status"] == "preliminary"
    native = await demo.get(f"/parse/classes/LabResult/{oid}", "smith")
    assert native.status_code == 200 and native.json()["testCode"] == "2345-7"
    assert (await fget(demo, f"/fhir/Observation/{oid}", "alice")).status_code == 404

    final = {**created, "status": "final"}
    final.pop("meta")
    r = await _send(demo, "PUT", f"/fhir/Observation/{oid}", "smith", final, **{"If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == 'W/"2"' and valid(r.json())["status"] == "final"
    stale = await _send(demo, "PUT", f"/fhir/Observation/{oid}", "smith", final, **{"If-Match": 'W/"1"'})
    assert stale.status_code == 412 and valid(stale.json())["resourceType"] == "OperationOutcome"
    assert (await fget(demo, f"/fhir/Observation/{oid}", "alice")).status_code == 200

    r = await demo.client.delete(f"/fhir/Observation/{oid}", headers=bearer(demo, "jones"))
    assert r.status_code == 404
    r = await demo.client.delete(f"/fhir/Observation/{oid}", headers=bearer(demo, "alice"))
    assert r.status_code == 403, "alice may read her published result but not delete it"
    r = await demo.client.delete(f"/fhir/Observation/{oid}", headers=bearer(demo, "smith"))
    assert r.status_code == 204
    gone = await fget(demo, f"/fhir/Observation/{oid}", "smith")
    assert gone.status_code == 410 and valid(gone.json())["issue"][0]["code"] == "deleted"
    assert (await fget(demo, f"/fhir/Observation/{oid}", "jones")).status_code == 404
    history = valid((await fget(demo, f"/fhir/Observation/{oid}/_history", "smith")).json())
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]
    assert (await fget(demo, f"/fhir/Observation/{oid}/_history/2", "smith")).status_code == 200


async def test_writes_follow_the_care_team_rules(demo: Api) -> None:
    before = (await demo.find("LabResult", master=True, count=1, limit=0)).json()["count"]
    r = await _send(demo, "POST", "/fhir/Observation", "jones", _observation(demo))
    assert r.status_code in (403, 404, 422) and valid(r.json())["resourceType"] == "OperationOutcome"
    r = await _send(demo, "POST", "/fhir/Observation", "alice", _observation(demo))
    assert r.status_code in (403, 404, 422), r.text
    assert (await demo.find("LabResult", master=True, count=1, limit=0)).json()["count"] == before
    published = await lab(demo, status="final")
    body = valid((await fget(demo, f"/fhir/Observation/{published}", "alice")).json())
    body["status"] = "cancelled"
    assert (await _send(demo, "PUT", f"/fhir/Observation/{published}", "alice", body)).status_code == 403
    assert (await _send(demo, "PUT", f"/fhir/Observation/{published}", "jones", body)).status_code == 404


async def test_write_errors_are_operation_outcomes(demo: Api) -> None:
    r = await _send(demo, "POST", "/fhir/Observation", "smith", b"{not json")
    assert r.status_code == 400 and valid(r.json())["resourceType"] == "OperationOutcome"
    r = await _send(demo, "POST", "/fhir/Observation", "smith", {"resourceType": "Patient"})
    assert r.status_code == 400
    r = await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo, status=42))
    assert r.status_code == 400 and valid(r.json())["issue"][0]["code"] == "structure"
    r = await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo, status="nope"))
    assert r.status_code == 422, r.text
    assert valid(r.json())["issue"][0]["expression"] == ["Observation.status"]
    r = await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo), **{"Content-Type": "text/plain"})
    assert r.status_code == 415
    created = (await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo))).json()
    r = await _send(demo, "PUT", f"/fhir/Observation/{created['id']}", "smith", {**created, "id": "other"})
    assert r.status_code == 400
    r = await _send(demo, "PUT", f"/fhir/Observation/{created['id']}", "smith", created, **{"If-Match": "3"})
    assert r.status_code == 400
    r = await _send(demo, "POST", "/fhir/AuditEvent", "admin", {"resourceType": "AuditEvent"})
    assert r.status_code == 405


async def test_patient_create_and_unique_mrn(demo: Api) -> None:
    new = {
        "resourceType": "Patient",
        "identifier": [{"system": "https://portal-gateway.example.org/fhir/sid/mrn", "value": "NEW-0001"}],
        "name": [{"family": "Newman", "given": ["Nora"]}],
        "birthDate": "2001-02-03",
    }
    r = await _send(demo, "POST", "/fhir/Patient", "admin", new)
    assert r.status_code == 201, r.text
    created = valid(r.json())
    assert created["name"][0]["family"] == "Newman"
    found = valid((await fget(demo, "/fhir/Patient", "admin", identifier="NEW-0001")).json())
    assert [e["resource"]["id"] for e in found["entry"]] == [created["id"]]
    dup = await _send(demo, "POST", "/fhir/Patient", "admin", new)
    assert dup.status_code == 409 and valid(dup.json())["issue"][0]["code"] == "conflict"
    assert (await _send(demo, "POST", "/fhir/Patient", "alice", {**new, "birthDate": "2001-02"})).status_code == 422
    smith_view = valid((await fget(demo, f"/fhir/Patient/{demo.ids['alice:patient']}", "smith")).json())
    smith_view["name"][0]["text"] = "Alice Q. Example"
    r = await _send(demo, "PUT", f"/fhir/Patient/{smith_view['id']}", "smith", smith_view)
    assert r.status_code == 200 and valid(r.json())["name"][0]["text"] == "Alice Q. Example"
    assert r.headers["etag"] == f'W/"{int(smith_view["meta"]["versionId"]) + 1}"'


async def test_nul_in_a_written_string_is_400(demo: Api) -> None:
    r = await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo, code={"text": "Glu\x00cose"}))
    assert r.status_code == 400 and valid(r.json())["resourceType"] == "OperationOutcome"


async def test_prefer_return(demo: Api) -> None:
    r = await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo), Prefer="return=minimal")
    assert r.status_code == 201 and r.content == b"" and r.headers["location"] and r.headers["etag"] == 'W/"1"'
    r = await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo), Prefer="return=OperationOutcome")
    assert r.status_code == 201 and valid(r.json())["issue"][0]["severity"] == "information"
    r = await _send(demo, "POST", "/fhir/Observation", "smith", _observation(demo), Prefer="return=representation")
    assert r.status_code == 201 and valid(r.json())["resourceType"] == "Observation"


async def test_deleting_a_referenced_patient_is_409(demo: Api) -> None:
    r = await demo.client.delete(f"/fhir/Patient/{demo.ids['bob:patient']}", headers=bearer(demo, "admin"))
    assert r.status_code == 409 and valid(r.json())["issue"][0]["code"] == "conflict"
    assert (await fget(demo, f"/fhir/Patient/{demo.ids['bob:patient']}", "admin")).status_code == 200


async def test_conditional_create(demo: Api) -> None:
    new = {
        "resourceType": "Patient",
        "identifier": [{"system": "https://portal-gateway.example.org/fhir/sid/mrn", "value": "COND-1"}],
        "name": [{"family": "Conditional"}],
    }
    cond = {"If-None-Exist": "identifier=https://portal-gateway.example.org/fhir/sid/mrn|COND-1"}
    first = await _send(demo, "POST", "/fhir/Patient", "admin", new, **cond)
    assert first.status_code == 201, first.text
    again = await _send(demo, "POST", "/fhir/Patient", "admin", new, **cond)
    assert again.status_code == 200 and valid(again.json())["id"] == first.json()["id"]
    many = await _send(demo, "POST", "/fhir/Patient", "admin", new, **{"If-None-Exist": "gender=female,male"})
    assert many.status_code == 412 and valid(many.json())["resourceType"] == "OperationOutcome"
    bad = await _send(demo, "POST", "/fhir/Patient", "admin", new, **{"If-None-Exist": "bogus=1"})
    assert bad.status_code == 400
    cap = (await demo.client.get("/fhir/metadata")).json()
    flags = {r["type"]: r["conditionalCreate"] for r in cap["rest"][0]["resource"]}
    assert flags["Patient"] is True and flags["AuditEvent"] is False
