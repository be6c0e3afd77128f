"""Object get/create/update/delete under the care-team rules (catalog A01, A09, A10, H03, H04)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_support import Api, pointer


async def _lab(demo: Api, who: str = "smith", **fields: Any) -> str:
    body = {
        "patient": pointer("PatientProfile", demo.ids["alice:patient"]),
        "testCode": "2345-7",
        "codeSystem": "LN",
        "testName": "Glucose",
        "resultValue": "101",
        "valueType": "NM",
        "units": "mg/dL",
        "status": "preliminary",
        **fields,
    }
    r = await demo.post("/parse/classes/LabResult", body, who)
    assert r.status_code == 201, r.text
    return str(r.json()["objectId"])


async def test_create_returns_parse_shape_and_location(demo: Api) -> None:
    r = await demo.post(
        "/parse/classes/LabResult",
        {
            "patient": pointer("PatientProfile", demo.ids["alice:patient"]),
            "testCode": "1",
            "status": "final",
            "effectiveAt": {"__type": "Date", "iso": "2026-01-02T03:04:05.678Z"},
        },
        "smith",
    )
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"objectId", "createdAt"}
    assert r.headers["location"] == f"http://testserver.local/parse/classes/LabResult/{body['objectId']}"
    got = (await demo.get(f"/parse/classes/LabResult/{body['objectId']}", "smith")).json()
    assert got["effectiveAt"] == {"__type": "Date", "iso": "2026-01-02T03:04:05.678Z"}
    assert got["patient"] == pointer("PatientProfile", demo.ids["alice:patient"])
    assert got["version"] == 1 and got["status"] == "final"
    assert got["publishedAt"]["__type"] == "Date", "a final result is published on creation"


async def test_patient_sees_published_not_preliminary(demo: Api) -> None:
    prelim = await _lab(demo)
    r = await demo.get(f"/parse/classes/LabResult/{prelim}", "alice")
    missing = await demo.get("/parse/classes/LabResult/doesNotExist", "alice")
    assert r.status_code == missing.status_code == 404
    assert r.json() == missing.json() == {"code": 101, "error": "Object not found."}
    assert (await demo.get(f"/parse/classes/LabResult/{prelim}", "smith")).status_code == 200

    r = await demo.put(f"/parse/classes/LabResult/{prelim}", {"status": "final"}, "smith")
    assert r.status_code == 200 and "updatedAt" in r.json()
    got = await demo.get(f"/parse/classes/LabResult/{prelim}", "alice")
    assert got.status_code == 200 and got.json()["version"] == 2


async def test_provider_only_result_hidden_from_patient_even_when_final(demo: Api) -> None:
    lab = await _lab(demo, status="final", visibility="provider-only")
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", "alice")).status_code == 404
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", "smith")).status_code == 200


@pytest.mark.parametrize("who", ["bob", "jones"])
async def test_outsiders_cannot_read_or_write(demo: Api, who: str) -> None:
    lab = await _lab(demo, status="final")
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", who)).status_code == 404
    r = await demo.put(f"/parse/classes/LabResult/{lab}", {"resultValue": "1"}, who)
    assert r.status_code in (400, 404)
    r = await demo.delete(f"/parse/classes/LabResult/{lab}", who)
    assert r.status_code in (400, 404)
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", "smith")).json()["resultValue"] == "101"
    r = await demo.get(f"/parse/classes/PatientProfile/{demo.ids['alice:patient']}", who)
    assert r.status_code == 404


async def test_provider_cannot_create_for_patient_outside_care_team(demo: Api) -> None:
    r = await demo.post(
        "/parse/classes/LabResult",
        {"patient": pointer("PatientProfile", demo.ids["alice:patient"]), "testCode": "x"},
        "jones",
    )
    assert r.status_code == 404 and r.json()["code"] == 101


async def test_patient_cannot_write_clinical_fields(demo: Api) -> None:
    lab = await _lab(demo, status="final")
    r = await demo.put(f"/parse/classes/LabResult/{lab}", {"resultValue": "1"}, "alice")
    assert r.status_code in (400, 404)
    r = await demo.post(
        "/parse/classes/LabResult",
        {"patient": pointer("PatientProfile", demo.ids["alice:patient"]), "testCode": "x"},
        "alice",
    )
    assert r.status_code == 400 and r.json()["code"] == 119


@pytest.mark.parametrize(
    "field, value",
    [
        ("medicalRecordNumber", "HACKED"),
        ("careTeam", [pointer("ProviderProfile", "zzzzzzzzzz")]),
        ("user", pointer("_User", "zzzzzzzzzz")),
        ("isActive", False),
        ("givenName", "Mallory"),
    ],
)
async def test_patient_mass_assignment_on_own_profile(demo: Api, field: str, value: Any) -> None:
    path = f"/parse/classes/PatientProfile/{demo.ids['alice:patient']}"
    before = (await demo.get(path, "alice")).json()
    r = await demo.put(path, {field: value}, "alice")
    assert r.status_code == 400 and r.json()["code"] == 119, r.text
    after = (await demo.get(path, "alice")).json()
    assert after == before


async def test_patient_may_edit_own_contact_and_acl_stays(demo: Api) -> None:
    path = f"/parse/classes/PatientProfile/{demo.ids['alice:patient']}"
    before = (await demo.get(path, "alice")).json()
    r = await demo.put(
        path, {"contact": {"phone": "+1-555-0199"}, "ACL": {"*": {"read": True, "write": True}}}, "alice"
    )
    assert r.status_code == 200
    after = (await demo.get(path, "alice")).json()
    assert after["contact"] == {"phone": "+1-555-0199"}
    assert after["ACL"] == before["ACL"] and "*" not in after["ACL"]
    assert after["version"] == before["version"] + 1


async def test_server_managed_fields_rejected(demo: Api) -> None:
    lab = await _lab(demo)
    for field in ("objectId", "createdAt", "updatedAt", "version"):
        r = await demo.put(f"/parse/classes/LabResult/{lab}", {field: "x"}, "smith")
        assert r.status_code == 400 and r.json()["code"] == 105, field


async def test_provider_profile_directory_and_admin_only_writes(demo: Api) -> None:
    smith = demo.ids["smith:provider"]
    for who in ("alice", "bob", "jones"):
        r = await demo.get(f"/parse/classes/ProviderProfile/{smith}", who)
        assert r.status_code == 200 and r.json()["displayName"] == "Dr. Sarah Smith"
    assert (await demo.get(f"/parse/classes/ProviderProfile/{smith}")).status_code == 404
    for who in ("alice", "smith"):
        r = await demo.post("/parse/classes/ProviderProfile", {"displayName": "Dr. Fake"}, who)
        assert r.status_code == 400 and r.json()["code"] == 119
        r = await demo.put(f"/parse/classes/ProviderProfile/{smith}", {"displayName": "X"}, who)
        assert r.status_code in (400, 404)
    r = await demo.post("/parse/classes/ProviderProfile", {"displayName": "Dr. New", "npi": "1234567893"}, "admin")
    assert r.status_code == 201


async def test_audit_log_is_read_only_for_everyone(demo: Api) -> None:
    r = await demo.post("/parse/classes/AuditLog", {"action": "read"}, master=True)
    assert r.status_code == 400 and r.json()["code"] == 119
    r = await demo.post("/parse/classes/AuditLog", {"action": "read"}, "admin")
    assert r.status_code == 400 and r.json()["code"] == 119


async def test_unknown_class_and_unknown_field(demo: Api) -> None:
    r = await demo.post("/parse/classes/Secret", {"a": 1}, "alice")
    assert r.status_code == 400 and r.json()["code"] == 119
    lab = await _lab(demo)
    r = await demo.put(f"/parse/classes/LabResult/{lab}", {"hack": 1}, "smith")
    assert r.status_code == 400 and r.json()["code"] == 119


@pytest.mark.parametrize(
    "body, code",
    [
        ({"resultValue": 5}, 111),
        ({"status": "nope"}, 142),
        ({"effectiveAt": "2026-01-01"}, 111),
        ({"orderedBy": pointer("PatientProfile", "abc")}, 111),
        ({"resultData": {"$where": "1"}}, 105),
        ({"resultData": {"__proto__": {"x": 1}}}, 105),
        ({"__proto__": 1}, 105),
        ({"_rperm": ["*"]}, 105),
        ({"attachments": {"not": "array"}}, 111),
        ({"resultValue": {"__op": "Increment", "amount": 1}}, 111),
        ({"resultValue": {"__op": "Explode"}}, 107),
    ],
)
async def test_bad_values_get_specific_codes_and_change_nothing(demo: Api, body: dict[str, Any], code: int) -> None:
    lab = await _lab(demo)
    before = (await demo.get(f"/parse/classes/LabResult/{lab}", "smith")).json()
    r = await demo.put(f"/parse/classes/LabResult/{lab}", body, "smith")
    assert r.status_code == 400 and r.json()["code"] == code, r.text
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", "smith")).json() == before


async def test_malformed_json_and_non_object_body(demo: Api) -> None:
    headers = {**demo.headers("smith"), "Content-Type": "application/json"}
    r = await demo.client.post("/parse/classes/LabResult", content=b"{not json", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == 107
    r = await demo.client.post("/parse/classes/LabResult", content=b"[1,2]", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == 107


async def test_field_ops_increment_add_remove_delete(demo: Api) -> None:
    lab = await _lab(demo, attachments=[{"title": "a"}])
    path = f"/parse/classes/LabResult/{lab}"
    r = await demo.put(
        path, {"attachments": {"__op": "AddUnique", "objects": [{"title": "a"}, {"title": "b"}]}}, "smith"
    )
    assert r.status_code == 200 and r.json()["attachments"] == [{"title": "a"}, {"title": "b"}]
    r = await demo.put(path, {"attachments": {"__op": "Remove", "objects": [{"title": "a"}]}}, "smith")
    assert r.json()["attachments"] == [{"title": "b"}]
    r = await demo.put(path, {"notes": {"__op": "Delete"}, "units": None}, "smith")
    assert r.status_code == 200
    got = (await demo.get(path, "smith")).json()
    assert "notes" not in got and "units" not in got and got["version"] == 4
    r = await demo.put(path, {"patient": {"__op": "Delete"}}, "smith")
    assert r.status_code == 400


async def test_delete_then_get_is_absent(demo: Api) -> None:
    lab = await _lab(demo)
    assert (await demo.delete(f"/parse/classes/LabResult/{lab}", "smith")).json() == {}
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", "smith")).status_code == 404


async def test_treatment_plan_drafts_and_acknowledgement(demo: Api) -> None:
    r = await demo.post(
        "/parse/classes/TreatmentPlan",
        {"patient": pointer("PatientProfile", demo.ids["alice:patient"]), "summary": "Walk daily"},
        "smith",
    )
    assert r.status_code == 201
    plan = r.json()["objectId"]
    path = f"/parse/classes/TreatmentPlan/{plan}"
    assert (await demo.get(path, "alice")).status_code == 404, "drafts stay with the care team"
    r = await demo.put(path, {"acknowledgedAt": {"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}}, "alice")
    assert r.status_code == 404
    assert (await demo.put(path, {"status": "active"}, "smith")).status_code == 200
    got = (await demo.get(path, "alice")).json()
    assert got["status"] == "active" and "approvedAt" in got
    r = await demo.put(path, {"acknowledgedAt": {"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}}, "alice")
    assert r.status_code == 200
    r = await demo.put(path, {"status": "completed"}, "alice")
    assert r.status_code == 400 and r.json()["code"] == 119
    r = await demo.put(path, {"status": "draft"}, "smith")
    assert r.status_code == 400 and r.json()["code"] == 142


async def test_messages_only_within_care(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    r = await demo.post(
        "/parse/classes/Message",
        {"patient": pointer("PatientProfile", alice), "to": pointer("_User", demo.ids["dr.smith:user"]), "body": "Hi"},
        "alice",
    )
    assert r.status_code == 201, r.text
    msg = r.json()["objectId"]
    got = (await demo.get(f"/parse/classes/Message/{msg}", "smith")).json()
    assert got["from"]["objectId"] == demo.ids["alice:user"] and got["status"] == "sent"
    assert (await demo.get(f"/parse/classes/Message/{msg}", "bob")).status_code == 404
    r = await demo.post(
        "/parse/classes/Message",
        {"patient": pointer("PatientProfile", alice), "to": pointer("_User", demo.ids["dr.jones:user"]), "body": "Hi"},
        "alice",
    )
    assert r.status_code == 400 and r.json()["code"] == 119
    r = await demo.post(
        "/parse/classes/Message",
        {
            "patient": pointer("PatientProfile", demo.ids["bob:patient"]),
            "to": pointer("_User", demo.ids["dr.jones:user"]),
            "body": "Hi",
        },
        "alice",
    )
    assert r.status_code == 404
    r = await demo.post(
        "/parse/classes/Message",
        {
            "patient": pointer("PatientProfile", alice),
            "to": pointer("_User", demo.ids["dr.smith:user"]),
            "from": pointer("_User", demo.ids["alice:user"]),
            "body": "naming myself as sender is fine",
        },
        "alice",
    )
    assert r.status_code == 201, r.text
    r = await demo.post(
        "/parse/classes/Message",
        {
            "patient": pointer("PatientProfile", alice),
            "to": pointer("_User", demo.ids["alice:user"]),
            "from": pointer("_User", demo.ids["dr.smith:user"]),
            "body": "spoofed sender",
        },
        "alice",
    )
    assert r.status_code == 400 and r.json()["code"] == 119
    r = await demo.put(f"/parse/classes/Message/{msg}", {"isRead": True}, "smith")
    assert r.status_code == 200
    got = (await demo.get(f"/parse/classes/Message/{msg}", "alice")).json()
    assert got["status"] == "read" and "readAt" in got


async def test_concurrent_updates_keep_versions_contiguous(demo: Api) -> None:
    import asyncio

    lab = await _lab(demo)
    path = f"/parse/classes/LabResult/{lab}"
    results = await asyncio.gather(*(demo.put(path, {"notes": f"n{i}"}, "smith") for i in range(8)))
    ok = [r for r in results if r.status_code == 200]
    assert ok, [r.text for r in results]
    for r in results:
        assert r.status_code in (200, 400), r.text
    got = (await demo.get(path, "smith")).json()
    assert got["version"] == 1 + len(ok)
