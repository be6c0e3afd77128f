"""Read auditing (issue #6): every read or search of health data, through either door, has its entry.

The entry is committed before the response (group commit), so the tests read the
AuditLog straight from the database right after each request.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from sqlalchemy import select, text

from gateway.audit.reads import GATHER_TURNS, IDS_LISTED, ids_digest
from gateway.audit.verify import verify_chain
from gateway.auth.passwords import Passwords
from gateway.policy.principal import master
from gateway.records.service import Records
from gateway.store.database import Database
from gateway.store.engine import create_engine
from gateway.store.models import AuditLog, table_of
from tests.api_support import Api, make_settings
from tests.fhir.support import bearer, lab, master_headers

_log = table_of(AuditLog)


async def _max_seq(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text('SELECT COALESCE(MAX("seq"), 0) FROM "AuditLog"'))).scalar() or 0)
    finally:
        await engine.dispose()


async def _entries_after(url: str, seq: int) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(_log).where(_log.c.seq > seq).order_by(_log.c.seq))
            return list(rows.all())
    finally:
        await engine.dispose()


async def test_native_get_writes_one_read_entry(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    before = await _max_seq(url)
    r = await demo.get(f"/parse/classes/LabResult/{lab_id}", "alice")
    assert r.status_code == 200, r.text
    [entry] = await _entries_after(url, before)
    assert (entry.action, entry.entityType, entry.entityId, entry.outcome) == ("read", "LabResult", lab_id, "success")
    assert entry.actor == demo.ids["alice:user"] and entry.patient == demo.ids["alice:patient"]
    assert entry.sourceAddress and entry.requestId
    assert (await verify_chain(url)).ok


async def test_native_find_lists_returned_ids_per_patient(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    await lab(demo, status="final")
    await lab(demo, "jones", patient=demo.ids["bob:patient"], status="final")
    before = await _max_seq(url)
    r = await demo.find("LabResult", "admin", where='{"status":"final"}', limit=100)
    assert r.status_code == 200, r.text
    returned = r.json()["results"]
    by_patient: dict[str, set[str]] = {}
    for rec in returned:
        by_patient.setdefault(rec["patient"]["objectId"], set()).add(rec["objectId"])
    entries = await _entries_after(url, before)
    assert len(entries) == len(by_patient) >= 2
    for entry in entries:
        assert entry.action == "search" and entry.entityType == "LabResult"
        ids = set(entry.metadata.get("ids") or [entry.entityId])
        assert ids == by_patient[entry.patient]
        assert "final" in base64.b64decode(entry.metadata["query"]).decode()


async def test_native_find_with_no_results_is_one_entry_without_patient(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    before = await _max_seq(url)
    r = await demo.find("LabResult", "alice", where='{"testCode":"no-such-code"}')
    assert r.status_code == 200 and r.json()["results"] == []
    [entry] = await _entries_after(url, before)
    assert entry.action == "search" and entry.patient is None and entry.metadata["count"] == 0


async def test_native_include_lists_the_included_chart(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    before = await _max_seq(url)
    r = await demo.get(f"/parse/classes/LabResult/{lab_id}", "smith", include="patient")
    assert r.status_code == 200 and r.json()["patient"]["__type"] == "Object"
    [entry] = await _entries_after(url, before)
    assert entry.metadata["included"] == [f"PatientProfile/{demo.ids['alice:patient']}"]
    assert entry.patient == demo.ids["alice:patient"]
    r = await demo.find("LabResult", "smith", include="patient", where=f'{{"objectId":"{lab_id}"}}')
    assert r.status_code == 200 and len(r.json()["results"]) == 1
    [entry] = await _entries_after(url, before + 1)
    assert entry.patient == demo.ids["alice:patient"] and entry.entityId == lab_id


async def test_reads_of_non_health_classes_are_not_audited(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    before = await _max_seq(url)
    assert (await demo.find("ProviderProfile", "alice")).status_code == 200
    assert (await demo.get(f"/parse/users/{demo.ids['alice:user']}", "alice")).status_code == 200
    assert (await demo.get("/parse/users/me", "alice")).status_code == 200
    assert await _entries_after(url, before) == []


async def test_hidden_record_is_not_a_read(demo: Api, demo_database: Any) -> None:
    """A 404 returned no health data: no read entry (and the same 404 as a missing id)."""
    url, _ = demo_database
    bobs = await lab(demo, "jones", patient=demo.ids["bob:patient"], status="final")
    before = await _max_seq(url)
    assert (await demo.get(f"/parse/classes/LabResult/{bobs}", "alice")).status_code == 404
    assert await _entries_after(url, before) == []


async def test_fhir_read_vread_history_search(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    auth = bearer(demo, "smith")
    steps = [
        (f"/fhir/Observation/{lab_id}", "read", "read"),
        (f"/fhir/Observation/{lab_id}/_history/1", "vread", "vread"),
        (f"/fhir/Observation/{lab_id}/_history", "history", "history-instance"),
    ]
    for path, action, subtype in steps:
        before = await _max_seq(url)
        r = await demo.client.get(path, headers=auth)
        assert r.status_code == 200, r.text
        [entry] = await _entries_after(url, before)
        assert (entry.action, entry.entityType, entry.entityId) == (action, "LabResult", lab_id)
        event = (await demo.client.get(f"/fhir/AuditEvent/{entry.objectId}", headers=master_headers())).json()
        assert event["subtype"][0]["code"] == subtype and event["action"] == "R"
        found = await demo.client.get("/fhir/AuditEvent", params={"subtype": subtype}, headers=master_headers())
        assert entry.objectId in {e["resource"]["id"] for e in found.json().get("entry", [])}
        await _entries_after(url, before)  # (the AuditEvent reads above are audited too)
        assert entry.patient == demo.ids["alice:patient"] and entry.actor == demo.ids["dr.smith:user"]
    before = await _max_seq(url)
    r = await demo.client.get("/fhir/Observation", headers=auth, params={"patient": demo.ids["alice:patient"]})
    assert r.status_code == 200, r.text
    returned = {e["resource"]["id"] for e in r.json().get("entry", [])}
    [entry] = await _entries_after(url, before)
    assert entry.action == "search" and entry.patient == demo.ids["alice:patient"]
    assert set(entry.metadata.get("ids") or [entry.entityId]) == returned
    assert demo.ids["alice:patient"] in base64.b64decode(entry.metadata["query"]).decode()


async def test_fhir_update_is_audited_once_as_an_update(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    auth = bearer(demo, "smith")
    r = await demo.client.get(f"/fhir/Patient/{demo.ids['alice:patient']}", headers=auth)
    resource = r.json()
    resource["gender"] = "female" if resource.get("gender") != "female" else "other"
    before = await _max_seq(url)
    r = await demo.client.put(f"/fhir/Patient/{demo.ids['alice:patient']}", json=resource, headers=auth)
    assert r.status_code == 200, r.text
    assert [e.action for e in await _entries_after(url, before)] == ["update"]


async def test_concurrent_reads_share_commits_and_keep_one_chain(demo: Api, demo_database: Any) -> None:
    """Group commit: 40 reads at once take fewer than 40 transactions, and the chain stays one line."""
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    before = await _max_seq(url)
    db = Database(url)
    records = Records(db, make_settings(url), Passwords(1, 1024))
    try:
        got = await asyncio.gather(*(records.get(master(), "LabResult", lab_id) for _ in range(40)))
    finally:
        await db.dispose()
    assert all(r["objectId"] == lab_id for r in got)
    entries = await _entries_after(url, before)
    assert len(entries) == 40 and [e.seq for e in entries] == list(range(before + 1, before + 41))
    assert 1 <= records.reads.batches < 40
    assert (await verify_chain(url)).ok


async def test_reads_a_few_loop_turns_apart_share_one_commit(demo: Api, demo_database: Any) -> None:
    """Requests already received reach their audit a few event-loop turns apart (parsing, routing);
    the batch waits GATHER_TURNS turns so that they share one commit instead of taking one each."""
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    db = Database(url)
    records = Records(db, make_settings(url), Passwords(1, 1024))

    record = await records.get(master(), "LabResult", lab_id)  # the writer connection exists from here
    stagger = range(4)  # within GATHER_TURNS
    assert max(stagger) < GATHER_TURNS

    async def late_read(turns: int) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)
        await records.reads.read(master(), "LabResult", record)

    try:
        first = records.reads.batches
        before = await _max_seq(url)
        await asyncio.gather(*(late_read(t) for t in stagger))
    finally:
        await db.dispose()
    assert len(await _entries_after(url, before)) == len(stagger)
    assert records.reads.batches - first == 1, "readers arriving within the gather turns share one commit"
    assert (await verify_chain(url)).ok


async def test_read_fails_closed_when_the_entry_cannot_be_written(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text('ALTER TABLE "_AuditHead" RENAME TO "_AuditHeadGone"'))
    try:
        r = await demo.get(f"/parse/classes/LabResult/{lab_id}", "alice")
        assert r.status_code == 503 and "resultValue" not in r.text, r.text
        r = await demo.client.get(f"/fhir/Observation/{lab_id}", headers=bearer(demo, "alice"))
        assert r.status_code == 503 and r.json()["resourceType"] == "OperationOutcome"
    finally:
        async with engine.begin() as conn:
            await conn.execute(text('ALTER TABLE "_AuditHeadGone" RENAME TO "_AuditHead"'))
        await engine.dispose()


def test_many_ids_become_a_digest() -> None:
    ids = [f"id{i:04d}" for i in range(IDS_LISTED + 1)]
    assert ids_digest(ids) == ids_digest(list(reversed(ids)))
    assert len(ids_digest(ids)) == 64


async def test_my_access_log_shows_who_read_my_chart(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    assert (await demo.get(f"/parse/classes/LabResult/{lab_id}", "smith")).status_code == 200
    before = await _max_seq(url)
    r = await demo.post("/parse/functions/myAccessLog", {}, "alice")
    assert r.status_code == 200, r.text
    log = r.json()["result"]
    assert log[0]["action"] == "read" and log[0]["recordId"] == lab_id and log[0]["who"] == "dr.smith@example.org"
    [entry] = await _entries_after(url, before)
    assert (entry.action, entry.entityType, entry.patient) == ("search", "AuditLog", None)
    assert entry.metadata["count"] == len(log)


async def test_fhir_search_include_lists_the_included_resources(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    alice = demo.ids["alice:patient"]
    before = await _max_seq(url)
    r = await demo.client.get(
        "/fhir/Observation",
        params={"_id": lab_id, "_include": "Observation:patient"},
        headers=bearer(demo, "smith"),
    )
    assert r.status_code == 200, r.text
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in r.json()["entry"]}
    assert ("Patient", "include") in modes
    [entry] = await _entries_after(url, before)
    assert entry.patient == alice and entry.entityId == lab_id
    assert entry.metadata["included"] == [f"PatientProfile/{alice}"]


async def test_reads_inside_a_transaction_bundle_commit_with_it(demo: Api, demo_database: Any) -> None:
    """A read or search entry of a transaction Bundle is written in the Bundle's own transaction:
    no wait on the group commit (which would need the lock the Bundle holds), all or nothing."""
    url, _ = demo_database
    lab_id = await lab(demo, status="final")
    alice = demo.ids["alice:patient"]
    resource = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2030-02-03T09:00:00Z",
        "end": "2030-02-03T09:30:00Z",
        "participant": [{"actor": {"reference": f"Patient/{alice}"}, "status": "accepted"}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": resource, "request": {"method": "POST", "url": "Appointment"}},
            {"request": {"method": "GET", "url": f"Observation/{lab_id}"}},
            {"request": {"method": "GET", "url": f"Observation?patient={alice}"}},
        ],
    }
    before = await _max_seq(url)
    headers = {**bearer(demo, "smith"), "Content-Type": "application/fhir+json"}
    r = await asyncio.wait_for(demo.client.post("/fhir", json=bundle, headers=headers), 20)
    assert r.status_code == 200, r.text
    actions = sorted((e.action, e.entityType) for e in await _entries_after(url, before))
    assert actions == [("create", "Appointment"), ("read", "LabResult"), ("search", "LabResult")]
    assert (await verify_chain(url)).ok
