"""vread and instance history from ``_Version``, under the rules each version stood under."""

from __future__ import annotations

from tests.api_support import Api
from tests.fhir.support import fget, lab, valid


async def test_patient_never_sees_versions_hidden_from_her(demo: Api) -> None:
    oid = await lab(demo)
    r = await demo.put(f"/parse/classes/LabResult/{oid}", {"status": "final"}, "smith")
    assert r.status_code == 200
    team = valid((await fget(demo, f"/fhir/Observation/{oid}/_history", "smith")).json())
    assert team["type"] == "history" and [e["resource"]["meta"]["versionId"] for e in team["entry"]] == ["2", "1"]
    assert [e["response"]["etag"] for e in team["entry"]] == ['W/"2"', 'W/"1"']
    mine = valid((await fget(demo, f"/fhir/Observation/{oid}/_history", "alice")).json())
    assert [e["resource"]["meta"]["versionId"] for e in mine["entry"]] == ["2"]
    assert mine["entry"][0]["resource"]["status"] == "final"
    v1 = await fget(demo, f"/fhir/Observation/{oid}/_history/1", "smith")
    assert v1.status_code == 200 and valid(v1.json())["status"] == "preliminary"
    assert v1.headers["etag"] == 'W/"1"'
    hidden = await fget(demo, f"/fhir/Observation/{oid}/_history/1", "alice")
    missing = await fget(demo, f"/fhir/Observation/{oid}/_history/99", "alice")
    assert hidden.status_code == missing.status_code == 404 and hidden.json() == missing.json()
    assert (await fget(demo, f"/fhir/Observation/{oid}/_history/2", "alice")).status_code == 200


async def test_other_patients_history_is_absent(demo: Api) -> None:
    bob = demo.ids["bob:patient"]
    for path in (f"/fhir/Patient/{bob}/_history", f"/fhir/Patient/{bob}/_history/1"):
        assert (await fget(demo, path, "alice")).status_code == 404
        assert (await fget(demo, path, "smith")).status_code == 404
        assert (await fget(demo, path, "jones")).status_code == 200
    assert (await fget(demo, f"/fhir/Patient/{bob}/_history/abc", "jones")).status_code == 404


async def test_corrected_result_keeps_both_versions(demo: Api) -> None:
    search = valid((await fget(demo, "/fhir/Observation", "alice", status="corrected")).json())
    oid = search["entry"][0]["resource"]["id"]
    history = valid((await fget(demo, f"/fhir/Observation/{oid}/_history", "alice")).json())
    assert [e["resource"]["status"] for e in history["entry"]] == ["corrected", "final"]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]
