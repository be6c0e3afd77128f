"""Patient identity is (MRN, assigning authority PID-3.4); the ordering provider joins the care team."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.hl7v2 import Delivery, Ingest
from gateway.hl7v2.routes import ER7
from gateway.store.database import Database
from gateway.store.models import AuditLog, CareTeam, PatientProfile, table_of
from tests.api_support import APP_ID, MASTER_KEY, make_settings
from tests.hl7v2.conftest import register_feed
from tests.hl7v2.support import dead_letters, msa, result_ids

Client = AsyncTestClient[Any]
MASTER = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}
_patients = table_of(PatientProfile)
_care = table_of(CareTeam)
_audit = table_of(AuditLog)


def oru(control: str, pid3: str, *, orderer: str = "", order: str = "ID-1") -> bytes:
    return (
        f"MSH|^~\\&|LABCORE|ID LAB|PORTAL|PORTAL GW|20260118080000-0600||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        f"PID|1||{pid3}||Ident^Ida||19700101|F\r"
        f"ORC|RE|P-{order}|F-{order}||CM||||20260118070000-0600|||{orderer}\r"
        f"OBR|1|P-{order}|F-{order}|2345-7^Glucose^LN|||20260118070000-0600|||||||||{orderer}\r"
        "OBX|1|NM|2345-7^Glucose^LN||101|mg/dL^^UCUM|70-99|H|||F|||20260118073000-0600\r"
    ).encode()


async def _by_mrn(db: Database, mrn: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(_patients).where(_patients.c.medicalRecordNumber == mrn).order_by(_patients.c.createdAt)
        )
        return [dict(r) for r in rows.mappings()]


async def _send(ingest: Ingest, raw: bytes) -> bytes:
    return (await ingest.handle(raw, Delivery("mllp"))).ack


async def test_same_mrn_from_two_authorities_is_two_patients(db: Database) -> None:
    ingest = Ingest(db)
    assert msa(await _send(ingest, oru("ID-1", "X-77^^^EAST^MR", order="E1")))[1] == "AA"
    assert msa(await _send(ingest, oru("ID-2", "X-77^^^WEST^MR", order="W1")))[1] == "AA"
    east, west = await _by_mrn(db, "X-77")
    assert (east["mrnAuthority"], west["mrnAuthority"]) == ("EAST", "WEST")
    assert east["objectId"] != west["objectId"], "never merged across authorities"
    ambiguous = (await _send(ingest, oru("ID-3", "X-77^^^^MR", order="N1"))).decode()
    assert msa(ambiguous.encode())[1] == "AE" and "PID^1^3" in ambiguous and "PID-3.4" in ambiguous
    assert [d["controlId"] for d in await dead_letters(db)] == ["ID-3"]
    assert msa(await _send(ingest, oru("ID-4", "X-77^^^EAST^MR", order="E2")))[1] == "AA"
    assert [p["objectId"] for p in await _by_mrn(db, "X-77")] == [east["objectId"], west["objectId"]]


async def test_a_local_mrn_is_claimed_by_the_first_authority(db: Database) -> None:
    ingest = Ingest(db)
    assert msa(await _send(ingest, oru("CL-1", "Y-88^^^^MR", order="L1")))[1] == "AA"
    [local] = await _by_mrn(db, "Y-88")
    assert local["mrnAuthority"] == ""
    assert msa(await _send(ingest, oru("CL-2", "Y-88^^^EAST^MR", order="L2")))[1] == "AA"
    [claimed] = await _by_mrn(db, "Y-88")
    assert claimed["objectId"] == local["objectId"] and claimed["mrnAuthority"] == "EAST"
    assert msa(await _send(ingest, oru("CL-3", "Y-88^^^WEST^MR", order="L3")))[1] == "AA"
    assert [p["mrnAuthority"] for p in await _by_mrn(db, "Y-88")] == ["EAST", "WEST"]


@pytest.fixture
async def demo_http(demo_database: tuple[str, dict[str, str]]) -> AsyncIterator[tuple[Client, str, dict[str, str]]]:
    url, users = demo_database
    key = await register_feed(url, "lab-identity")
    app = create_app(make_settings(url))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client, key, {**users, "url": url}


async def _post(client: Client, key: str, raw: bytes) -> bytes:
    r = await client.post("/hl7v2", content=raw, headers={"Content-Type": ER7, "X-Feed-Key": key})
    return bytes(r.content)


async def test_fhir_patient_names_the_authority_and_round_trips(demo_http: tuple[Client, str, dict[str, str]]) -> None:
    client, key, _ = demo_http
    assert msa(await _post(client, key, oru("F-1", "Z-99^^^EAST^MR", order="F1")))[1] == "AA"
    assert msa(await _post(client, key, oru("F-2", "Z-99^^^WEST^MR", order="F2")))[1] == "AA"
    bundle = (await client.get("/fhir/Patient?identifier=Z-99", headers=MASTER)).json()
    patients = [e["resource"] for e in bundle["entry"]]
    assert sorted(p["identifier"][0]["assigner"]["display"] for p in patients) == ["EAST", "WEST"]
    assert len({p["identifier"][0]["system"] for p in patients}) == 1, "one MRN system for every patient"
    east = next(p for p in patients if p["identifier"][0]["assigner"]["display"] == "EAST")
    east.pop("meta", None)
    east["birthDate"] = "1970-01-02"
    put = await client.put(f"/fhir/Patient/{east['id']}", json=east, headers=MASTER)
    assert put.status_code == 200, put.text
    assert put.json()["identifier"][0]["assigner"] == {"display": "EAST"}
    demo = (await client.get("/fhir/Patient?identifier=DEMO-0001", headers=MASTER)).json()
    assert "assigner" not in demo["entry"][0]["resource"]["identifier"][0], "a local MRN has no assigner"


async def test_ordering_provider_joins_the_care_team(demo_http: tuple[Client, str, dict[str, str]]) -> None:
    client, key, users = demo_http
    alice = users["patient:DEMO-0001"]
    jones = {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": users["token:dr.jones@example.org"]}
    assert (await client.get(f"/parse/classes/PatientProfile/{alice}", headers=jones)).status_code == 404
    by_jones = "1999999992^Jones^Jamie^^^^MD^^NPI&2.16.840.1.113883.4.6&ISO^L^^^NPI"
    message = oru("CT-1", "DEMO-0001^^^DEMO^MR", orderer=by_jones, order="CT1")
    assert msa(await _post(client, key, message))[1] == "AA"
    [result] = result_ids(message)
    assert (await client.get(f"/parse/classes/LabResult/{result}", headers=jones)).status_code == 200
    profile = await client.get(f"/parse/classes/PatientProfile/{alice}", headers=jones)
    assert profile.status_code == 200
    team = [p["objectId"] for p in profile.json()["careTeam"]]
    assert len(team) == 2, "added after dr.smith, who stays"
    db = Database(users["url"])
    try:
        async with db.read() as conn:
            version = (await conn.execute(select(_patients.c.version).where(_patients.c.objectId == alice))).scalar()
            entries = (
                await conn.execute(
                    select(_audit.c.summary).where(
                        (_audit.c.entityType == "PatientProfile")
                        & (_audit.c.entityId == alice)
                        & (_audit.c.action == "update")
                    )
                )
            ).all()
        assert len([e for e in entries if "care team" in (e.summary or "")]) == 1
        again = oru("CT-2", "DEMO-0001^^^DEMO^MR", orderer=by_jones, order="CT2")
        assert msa(await _post(client, key, again))[1] == "AA"
        async with db.read() as conn:
            after = (await conn.execute(select(_patients.c.version).where(_patients.c.objectId == alice))).scalar()
            members = (await conn.execute(select(_care.c.relatedId).where(_care.c.owningId == alice))).all()
        assert after == version and len(members) == 2, "already on the team: no new version"
    finally:
        await db.dispose()


async def test_feed_created_patient_gets_its_ordering_provider(db: Database) -> None:
    ingest = Ingest(db)
    orderer = "1234567893^Okafor^Chidi^^^^MD^^NPI&2.16.840.1.113883.4.6&ISO^L^^^NPI"
    assert msa(await _send(ingest, oru("NEW-1", "N-1^^^EAST^MR", orderer=orderer, order="N1")))[1] == "AA"
    [patient] = await _by_mrn(db, "N-1")
    async with db.read() as conn:
        members = (await conn.execute(select(_care.c.relatedId).where(_care.c.owningId == patient["objectId"]))).all()
    assert len(members) == 1
    without = oru("NEW-2", "N-2^^^EAST^MR", order="N2")
    assert msa(await _send(ingest, without))[1] == "AA"
    [other] = await _by_mrn(db, "N-2")
    async with db.read() as conn:
        none = (await conn.execute(select(_care.c.relatedId).where(_care.c.owningId == other["objectId"]))).all()
    assert none == [], "no ordering provider, no care team change"


async def test_a_message_s_results_share_an_id_prefix(db: Database) -> None:
    """A message's results are clustered by their order (their index entries share pages); two
    orders get two prefixes."""
    from tests.hl7v2.support import FIXTURES, wire

    ids = result_ids(wire(FIXTURES / "chem-panel-beaker.hl7"))
    assert len(ids) >= 10 and len({i[:5] for i in ids}) == 1 and len(set(ids)) == len(ids)
    other = result_ids(oru("ID-PREFIX", "MRN-PREFIX^^^IDLAB^MR", order="ID-2"))
    assert other[0][:5] != ids[0][:5]


async def test_a_result_stored_under_its_pre_clustering_id_is_still_corrected(db: Database) -> None:
    """Results the feed stored before clustered ids keep their 10-character ids: a later message for
    one of them (here a correction) versions that row instead of creating a second result."""
    from sqlalchemy import update

    from gateway.hl7v2.apply import has_legacy_result_ids, legacy_result_id
    from gateway.store.models import Hl7ResultIds, LabResult, Version
    from mappings.hl7v2 import parse_oru

    results, versions = table_of(LabResult), table_of(Version)
    first = oru("ID-LEGACY-1", "MRN-LEGACY^^^IDLAB^MR", order="LEG-1")
    assert msa(await _send(Ingest(db), first))[1] == "AA"
    async with db.read() as conn:
        assert not await has_legacy_result_ids(conn)
    [new_id] = result_ids(first)
    parsed = parse_oru(first)
    old_id = legacy_result_id(parsed.header.sending_facility, parsed.results[0])
    async with db.write() as conn:  # as a store written before the change holds it, once migration 0012 ran
        await conn.execute(update(results).where(results.c.objectId == new_id).values(objectId=old_id))
        await conn.execute(update(versions).where(versions.c.objectId == new_id).values(objectId=old_id))
        await conn.execute(update(table_of(Hl7ResultIds)).values(legacy=True))
        assert await has_legacy_result_ids(conn)
    corrected = first.replace(b"ID-LEGACY-1", b"ID-LEGACY-2").replace(b"||101|", b"||111|").replace(b"|F|||", b"|C|||")
    assert msa(await _send(Ingest(db), corrected))[1] == "AA"  # a new process: asks the store afresh
    async with db.read() as conn:
        rows = (await conn.execute(select(results.c.objectId, results.c.resultValue, results.c.version))).all()
    assert [tuple(r) for r in rows] == [(old_id, "111", 2)]
