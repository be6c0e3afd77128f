"""Audit coverage (issue #6, catalog G01/G02): each action through each door writes its entry, and each
entry maps to an AuditEvent in the BALP shape (validated with fhir.resources R4B and a shape check).

Every step runs one request and then reads exactly the AuditLog rows it added, so a missing
entry, a duplicate or a wrong field fails the step that caused it.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import func, select

from gateway.audit.verify import verify_chain
from gateway.store.engine import create_engine
from gateway.store.models import AuditLog, table_of
from tests.api_support import Api, pointer
from tests.fhir.support import bearer, lab, master_headers, valid
from tests.hl7v2.conftest import register_feed
from tests.hl7v2.support import result_ids

_log = table_of(AuditLog)
ACTIONS = {"C", "R", "U", "D", "E"}
DCM = "http://dicom.nema.org/resources/ontology/DCM"

ALICE_RESULT = (
    b"MSH|^~\\&|LABCORE|DEMO LAB|PORTAL|PORTAL GW|20260301090000+0000||ORU^R01^ORU_R01|AUDIT-COV-1|P|2.5.1\r"
    b"PID|1||DEMO-0001^^^DEMO^MR\r"
    b"ORC|RE|PO-9|FO-9||CM\r"
    b"OBR|1|PO-9|FO-9|24331-1^Lipid panel^LN|||20260301080000+0000|||||||||||||||20260301085900+0000|||F\r"
    b"OBX|1|NM|2093-3^Cholesterol^LN||187|mg/dL^^UCUM|<200||||F|||20260301080000+0000\r"
)


class Trail:
    """Reads the AuditLog rows each step adds."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seq = 0

    async def mark(self) -> None:
        engine = create_engine(self.url)
        async with engine.connect() as conn:
            self.seq = int((await conn.execute(select(func.coalesce(func.max(_log.c.seq), 0)))).scalar_one())
        await engine.dispose()

    async def new(self) -> list[Any]:
        engine = create_engine(self.url)
        async with engine.connect() as conn:
            rows = list((await conn.execute(select(_log).where(_log.c.seq > self.seq).order_by(_log.c.seq))).all())
        await engine.dispose()
        if rows:
            self.seq = rows[-1].seq
        return rows

    async def one(self, action: str, entity_type: str | None = None) -> Any:
        rows = await self.new()
        assert [r.action for r in rows] == [action], [(r.action, r.entityType) for r in rows]
        if entity_type is not None:
            assert rows[0].entityType == entity_type
        return rows[0]


def balp_shape(event: dict[str, Any], *, patient: str | None, request_id: str | None) -> None:
    """The parts of the IHE BALP profiles the catalog's G01 names."""
    assert event["type"]["code"] in ("rest", "110114", "110113", "110107")
    assert event["type"]["system"] in ("http://terminology.hl7.org/CodeSystem/audit-event-type", DCM)
    assert event["subtype"] and event["action"] in ACTIONS and event["recorded"]
    assert event["outcome"] in ("0", "4", "8", "12")
    if event["outcome"] != "0":
        assert event["outcomeDesc"]
    requestors = [a for a in event["agent"] if a["requestor"]]
    assert len(requestors) == 1 and requestors[0]["type"]["coding"][0]["code"] in ("humanuser", "110150")
    assert requestors[0]["who"].get("display") != "anonymous"
    codes = {a["type"]["coding"][0]["code"] for a in event["agent"]}
    assert "110152" in codes  # the server
    assert event["source"]["observer"]
    entities = event.get("entity", [])
    if patient is not None:
        assert any(
            e.get("role", {}).get("code") == "1" and e["what"]["reference"] == f"Patient/{patient}" for e in entities
        )
    if request_id is not None:
        assert any(
            e["type"].get("code") == "XrequestId" and e["what"]["identifier"]["value"] == request_id for e in entities
        )


async def _event(demo: Api, entry: Any) -> dict[str, Any]:
    r = await demo.client.get(f"/fhir/AuditEvent/{entry.objectId}", headers=master_headers())
    assert r.status_code == 200, r.text
    event = valid(r.json())
    balp_shape(event, patient=entry.patient, request_id=entry.requestId)
    return event


async def test_native_door_actions(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    trail = Trail(url)
    await trail.mark()
    alice = demo.ids["alice:patient"]

    body = {"patient": pointer("PatientProfile", alice), "startAt": {"__type": "Date", "iso": "2030-01-02T10:00:00Z"}}
    r = await demo.post("/parse/classes/Appointment", body, "smith")
    assert r.status_code == 201, r.text
    appt = r.json()["objectId"]
    entry = await trail.one("create", "Appointment")
    assert (entry.entityId, entry.patient, entry.actor) == (appt, alice, demo.ids["dr.smith:user"])
    assert entry.sourceAddress and entry.requestId and entry.outcome == "success"
    assert (await _event(demo, entry))["action"] == "C"
    await trail.new()  # the AuditEvent read above is itself audited (without a patient)

    assert (await demo.put(f"/parse/classes/Appointment/{appt}", {"reason": "check-up"}, "smith")).status_code == 200
    entry = await trail.one("update", "Appointment")
    assert entry.entityId == appt and entry.metadata == {"fields": ["reason"]}
    assert (await _event(demo, entry))["action"] == "U"
    await trail.new()

    assert (await demo.get(f"/parse/classes/Appointment/{appt}", "alice")).status_code == 200
    entry = await trail.one("read", "Appointment")
    assert entry.actor == demo.ids["alice:user"] and entry.patient == alice
    assert (await _event(demo, entry))["action"] == "R"
    await trail.new()

    r = await demo.find("Appointment", "alice")
    assert r.status_code == 200 and r.json()["results"]
    entry = await trail.one("search", "Appointment")
    event = await _event(demo, entry)
    assert event["action"] == "E" and event["subtype"][0]["code"] == "search-type"
    query = next(e for e in event["entity"] if e.get("role", {}).get("code") == "24")
    assert base64.b64decode(query["query"])
    await trail.new()

    assert (await demo.delete(f"/parse/classes/Appointment/{appt}", "smith")).status_code == 200
    entry = await trail.one("delete", "Appointment")
    assert (await _event(demo, entry))["action"] == "D"
    await trail.new()

    headers = demo.headers()
    r = await demo.client.post(
        "/parse/login", json={"username": "bob@example.org", "password": "wrong"}, headers=headers
    )
    assert r.status_code == 404
    entry = await trail.one("login-failed")
    assert entry.outcome == "failure" and entry.actorName == "login:bob@example.org"
    assert entry.entityId == demo.ids["bob:user"]
    event = await _event(demo, entry)
    assert event["type"]["code"] == "110114" and event["outcome"] == "4"
    await trail.new()

    token = await demo.login("bob@example.org")
    entry = await trail.one("login")
    assert entry.actor == demo.ids["bob:user"]
    assert (await _event(demo, entry))["subtype"][0]["code"] == "110122"
    await trail.new()

    r = await demo.client.post("/parse/logout", json={}, headers={**headers, "X-Parse-Session-Token": token})
    assert r.status_code == 200
    entry = await trail.one("logout")
    assert (await _event(demo, entry))["subtype"][0]["code"] == "110123"
    await trail.new()

    assert (await verify_chain(url)).ok


async def test_activation_is_audited(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    trail = Trail(url)
    body = {"medicalRecordNumber": "COV-0001", "dateOfBirth": "1990-05-06", "givenName": "Nina"}
    patient = (await demo.post("/parse/classes/PatientProfile", body, "smith")).json()["objectId"]
    await trail.mark()
    r = await demo.post("/parse/functions/issuePortalActivation", {"patientId": patient}, "smith")
    code = r.json()["result"]["code"]
    issued = await trail.new()
    assert issued and all(e.patient == patient for e in issued)
    r = await demo.post("/parse/users", {"username": "nina", "password": "pw"})
    demo.tokens["nina"] = r.json()["sessionToken"]
    await trail.mark()
    r = await demo.post("/parse/functions/activatePortal", {"code": code, "dateOfBirth": "1990-05-06"}, "nina")
    assert r.status_code == 200, r.text
    entries = await trail.new()
    activation = [e for e in entries if e.action == "activate"]
    assert len(activation) == 1 and activation[0].patient == patient and activation[0].entityId == patient
    await _event(demo, activation[0])


async def test_fhir_door_actions(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    trail = Trail(url)
    alice = demo.ids["alice:patient"]
    auth = {**bearer(demo, "smith"), "Content-Type": "application/fhir+json"}
    await trail.mark()
    resource = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2030-02-03T09:00:00Z",
        "end": "2030-02-03T09:30:00Z",
        "participant": [{"actor": {"reference": f"Patient/{alice}"}, "status": "accepted"}],
    }
    r = await demo.client.post("/fhir/Appointment", json=resource, headers=auth)
    assert r.status_code == 201, r.text
    appt = r.json()["id"]
    entry = await trail.one("create", "Appointment")
    assert entry.entityId == appt and entry.patient == alice
    await _event(demo, entry)
    await trail.new()

    r = await demo.client.get(f"/fhir/Appointment/{appt}", headers=auth)
    assert r.status_code == 200
    entry = await trail.one("read", "Appointment")
    assert (await _event(demo, entry))["subtype"][0]["code"] == "read"
    await trail.new()

    r = await demo.client.get("/fhir/Appointment", params={"patient": alice}, headers=auth)
    assert r.status_code == 200
    entry = await trail.one("search", "Appointment")
    assert entry.patient == alice
    await _event(demo, entry)
    await trail.new()

    updated = next(e["resource"] for e in r.json()["entry"] if e["resource"]["id"] == appt)
    updated["end"] = "2030-02-03T09:45:00Z"
    r = await demo.client.put(f"/fhir/Appointment/{appt}", json=updated, headers=auth)
    assert r.status_code == 200, r.text
    entry = await trail.one("update", "Appointment")
    await _event(demo, entry)
    await trail.new()

    r = await demo.client.delete(f"/fhir/Appointment/{appt}", headers=auth)
    assert r.status_code == 204, r.text
    entry = await trail.one("delete", "Appointment")
    await _event(demo, entry)
    await trail.new()

    lab_id = await lab(demo, status="final")
    await trail.mark()
    r = await demo.client.get(f"/fhir/Observation/{lab_id}/_history/1", headers=auth)
    assert r.status_code == 200
    entry = await trail.one("vread", "LabResult")
    assert (await _event(demo, entry))["subtype"][0]["code"] == "vread"
    await trail.new()
    r = await demo.client.get(f"/fhir/Observation/{lab_id}/_history", headers=auth)
    assert r.status_code == 200
    entry = await trail.one("history", "LabResult")
    assert (await _event(demo, entry))["subtype"][0]["code"] == "history-instance"
    assert (await verify_chain(url)).ok


async def test_hl7_ingest_is_audited(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    key = await register_feed(url, "lab-audit")
    trail = Trail(url)
    await trail.mark()
    r = await demo.client.post(
        "/hl7v2", content=ALICE_RESULT, headers={"Content-Type": "x-application/hl7-v2+er7", "X-Feed-Key": key}
    )
    assert r.status_code == 200, r.content
    [result_id] = result_ids(ALICE_RESULT)
    entries = await trail.new()
    published = [e for e in entries if e.entityType == "LabResult"]
    assert published and all(e.patient == demo.ids["alice:patient"] for e in published)
    assert all(e.actorName and e.actorName.startswith("hl7:") for e in entries), [e.actorName for e in entries]
    for entry in published:
        await _event(demo, entry)
    assert (await verify_chain(url)).ok
    assert result_id


async def test_audit_log_is_immutable_through_every_door(demo: Api, demo_database: Any) -> None:
    """G02: REST (session and master key), batch, FHIR create/update/delete, schema change: all refused."""
    url, _ = demo_database
    trail = Trail(url)
    await trail.mark()
    engine = create_engine(url)
    async with engine.connect() as conn:
        count = int((await conn.execute(select(func.count()).select_from(_log))).scalar_one())
        some = (await conn.execute(select(_log.c.objectId).limit(1))).scalar_one()
    await engine.dispose()
    attempts = [
        await demo.post("/parse/classes/AuditLog", {"action": "read"}, "admin"),
        await demo.post("/parse/classes/AuditLog", {"action": "read"}, master=True),
        await demo.put(f"/parse/classes/AuditLog/{some}", {"summary": "x"}, master=True),
        await demo.delete(f"/parse/classes/AuditLog/{some}", master=True),
        await demo.post(
            "/parse/batch",
            {"requests": [{"method": "DELETE", "path": f"/parse/classes/AuditLog/{some}"}]},
            master=True,
        ),
        await demo.put("/parse/schemas/AuditLog", {"classLevelPermissions": {"delete": {"*": True}}}, master=True),
    ]
    for r in attempts[:4]:
        assert r.status_code in (400, 403, 404, 405), r.text
    assert "error" in attempts[4].json()[0]
    assert attempts[5].status_code == 200  # a CLP may be stored; AuditLog stays read-only whatever it says
    new = [(e.action, e.entityType, e.entityId, e.outcome) for e in await trail.new()]
    assert [n[:2] for n in new if n[3] == "denied"] == [
        ("create", "AuditLog"),
        ("create", "AuditLog"),
        ("update", "AuditLog"),
        ("delete", "AuditLog"),
        ("delete", "AuditLog"),
    ], new
    assert new[-1] == ("update", "_SCHEMA", "AuditLog", "success"), new  # the CLP change itself is on the trail
    fhir = {**master_headers(), "Content-Type": "application/fhir+json"}
    event = {"resourceType": "AuditEvent", "recorded": "2026-01-01T00:00:00Z"}
    for r in (
        await demo.client.post("/fhir/AuditEvent", json=event, headers=fhir),
        await demo.client.put(f"/fhir/AuditEvent/{some}", json={**event, "id": some}, headers=fhir),
        await demo.client.delete(f"/fhir/AuditEvent/{some}", headers=fhir),
    ):
        assert r.status_code in (403, 404, 405), r.text
    schema_attempts = [
        await demo.put("/parse/schemas/AuditLog", {"classLevelPermissions": {"delete": {"*": True}}}, "admin"),
        await demo.put("/parse/schemas/AuditLog", {"fields": {"extra": {"type": "String"}}}, master=True),
        await demo.delete("/parse/schemas/AuditLog", master=True),
        await demo.post("/parse/schemas/Forgery", {}, master=True),
    ]
    assert [r.status_code for r in schema_attempts] == [403, 400, 400, 400], [r.text for r in schema_attempts]
    denied = [(e.action, e.entityType, e.entityId, e.actorName) for e in await trail.new() if e.outcome == "denied"]
    assert denied == [
        ("create", "AuditLog", None, "master-key"),
        ("update", "AuditLog", some, "master-key"),
        ("delete", "AuditLog", some, "master-key"),
        ("update", "_SCHEMA", None, "admin@example.org"),
        ("update", "_SCHEMA", "AuditLog", "master-key"),
        ("delete", "_SCHEMA", "AuditLog", "master-key"),
        ("create", "_SCHEMA", "Forgery", "master-key"),
    ], denied
    assert (await demo.post("/parse/classes/AuditLog", {"action": "read"}, master=True)).status_code in (400, 403)
    engine = create_engine(url)
    async with engine.connect() as conn:
        assert int((await conn.execute(select(func.count()).select_from(_log))).scalar_one()) >= count
        assert (await conn.execute(select(_log.c.objectId).where(_log.c.objectId == some))).scalar_one() == some
    await engine.dispose()
    assert (await verify_chain(url)).ok
