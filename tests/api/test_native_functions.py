"""Cloud functions: portal activation (single use, expiring, DOB-bound) and the access log."""

from __future__ import annotations

from typing import Any

from tests.api_support import Api, pointer


async def _new_patient(demo: Api, mrn: str = "NEW-0001", dob: str = "1990-05-06") -> str:
    r = await demo.post(
        "/parse/classes/PatientProfile", {"medicalRecordNumber": mrn, "dateOfBirth": dob, "givenName": "Nina"}, "smith"
    )
    assert r.status_code == 201, r.text
    return str(r.json()["objectId"])


async def _signup(demo: Api, name: str) -> str:
    r = await demo.post("/parse/users", {"username": name, "password": "pw"})
    assert r.status_code == 201
    demo.tokens[name] = r.json()["sessionToken"]
    return str(r.json()["objectId"])


async def _call(demo: Api, name: str, params: dict[str, Any], who: str | None) -> Any:
    return await demo.post(f"/parse/functions/{name}", params, who)


async def test_activation_flow_links_user_and_grants_access(demo: Api) -> None:
    patient = await _new_patient(demo)
    r = await _call(demo, "issuePortalActivation", {"patientId": patient}, "smith")
    assert r.status_code == 200, r.text
    code = r.json()["result"]["code"]
    assert r.json()["result"]["expiresAt"]["__type"] == "Date"
    await _signup(demo, "nina")
    path = f"/parse/classes/PatientProfile/{patient}"
    assert (await demo.get(path, "nina")).status_code == 404
    r = await _call(demo, "activatePortal", {"code": code, "dateOfBirth": "1990-05-06"}, "nina")
    assert r.status_code == 200, r.text
    assert r.json()["result"]["patient"] == pointer("PatientProfile", patient)
    got = await demo.get(path, "nina")
    assert got.status_code == 200 and got.json()["user"]["objectId"] == demo.ids.get(
        "nina:user", got.json()["user"]["objectId"]
    )
    await _signup(demo, "mallory")
    r = await _call(demo, "activatePortal", {"code": code, "dateOfBirth": "1990-05-06"}, "mallory")
    assert r.status_code == 400 and r.json()["code"] == 141, "codes are single use"


async def test_activation_refuses_wrong_birth_date_and_burns_after_five(demo: Api) -> None:
    patient = await _new_patient(demo)
    code = (await _call(demo, "issuePortalActivation", {"patientId": patient}, "smith")).json()["result"]["code"]
    await _signup(demo, "guesser")
    bodies = []
    for _ in range(5):
        r = await _call(demo, "activatePortal", {"code": code, "dateOfBirth": "2000-01-01"}, "guesser")
        assert r.status_code == 400 and r.json()["code"] == 141
        bodies.append(r.json())
    r = await _call(demo, "activatePortal", {"code": code, "dateOfBirth": "1990-05-06"}, "guesser")
    assert r.status_code == 400 and r.json() == bodies[0], "a burnt code fails like a wrong one"
    r = await _call(demo, "activatePortal", {"code": "NOPE-NOPE-NOPE", "dateOfBirth": "1990-05-06"}, "guesser")
    assert r.json() == bodies[0]


async def test_only_staff_of_the_patient_issue_codes(demo: Api) -> None:
    patient = await _new_patient(demo)
    for who in ("alice", "jones"):
        r = await _call(demo, "issuePortalActivation", {"patientId": patient}, who)
        assert r.status_code == 404 and r.json()["code"] == 101, who
    r = await _call(demo, "issuePortalActivation", {"patientId": demo.ids["alice:patient"]}, "smith")
    assert r.status_code == 400 and r.json()["code"] == 141, "already activated"
    r = await _call(demo, "issuePortalActivation", {"patientId": patient}, "admin")
    assert r.status_code == 200


async def test_anonymous_cannot_activate(demo: Api) -> None:
    r = await _call(demo, "activatePortal", {"code": "x", "dateOfBirth": "1990-05-06"}, None)
    assert r.status_code == 400 and r.json()["code"] == 141


async def test_unknown_function(demo: Api) -> None:
    r = await _call(demo, "dropTables", {}, "alice")
    assert r.status_code == 400 and r.json() == {"code": 141, "error": 'Invalid function: "dropTables"'}


async def test_my_access_log_shows_who_touched_my_records(demo: Api) -> None:
    r = await demo.post(
        "/parse/classes/LabResult",
        {"patient": pointer("PatientProfile", demo.ids["alice:patient"]), "testCode": "x", "status": "final"},
        "smith",
    )
    assert r.status_code == 201
    log = (await _call(demo, "myAccessLog", {}, "alice")).json()["result"]
    assert log[0]["who"] == "dr.smith@example.org" and log[0]["action"] == "create"
    assert log[0]["record"] == "LabResult" and log[0]["recordId"] == r.json()["objectId"]
    bob_log = (await _call(demo, "myAccessLog", {}, "bob")).json()["result"]
    assert all(entry["recordId"] != r.json()["objectId"] for entry in bob_log)
