"""Rows remembered by the read path (``gateway.store.rowmemo``) answer exactly what a fresh decode does.

Every response here is taken three ways: from an app that remembers nothing, and twice from one
that does (the second time from its memo). They must be identical, for every caller, include
path, hidden field and FHIR mapping; and a write must show on the next read although the row
was remembered before it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from tests.api_support import APP_ID, Api, make_settings

WHO = ("alice", "bob", "smith", "jones", "admin")


@pytest.fixture
async def plain(demo_database: tuple[str, dict[str, str]]) -> AsyncIterator[AsyncTestClient[Any]]:
    """The same store through an app that remembers no rows."""
    url, _ = demo_database
    app = create_app(make_settings(url, read_memo_rows=0))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client


def _native(demo: Api, who: str) -> dict[str, str]:
    return {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": demo.tokens[who]}


def _fhir(demo: Api, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.tokens[who]}", "Accept": "application/fhir+json"}


async def _three_ways(
    demo: Api, plain: AsyncTestClient[Any], path: str, headers: dict[str, str], params: dict[str, str] | None = None
) -> Any:
    want = await plain.get(path, headers=headers, params=params)
    for _ in range(2):
        got = await demo.client.get(path, headers=headers, params=params)
        assert got.status_code == want.status_code, (path, params, got.text)
        assert got.json() == want.json(), (path, params)
        for header in ("etag", "last-modified", "content-type"):
            assert got.headers.get(header) == want.headers.get(header), (path, header)
    return want.json()


NATIVE_FINDS: list[tuple[str, dict[str, str]]] = [
    ("LabResult", {"order": "-publishedAt", "include": "orderedBy,patient.user"}),
    ("LabResult", {"order": "-publishedAt"}),  # after an include: pointers stay pointers
    ("LabResult", {"keys": "status,resultValue", "include": "orderedBy"}),
    ("TreatmentPlan", {"include": "provider.user,createdBy"}),
    ("PatientProfile", {"include": "careTeam,user"}),
    ("ProviderProfile", {}),
    ("Message", {"include": "from,to"}),
    ("Appointment", {"include": "patient,provider"}),
    ("_User", {}),
]

FHIR_SEARCHES: list[tuple[str, dict[str, str]]] = [
    ("Observation", {"_sort": "-date", "_count": "5"}),
    ("Observation", {"_sort": "-date", "_count": "5", "_elements": "status,code"}),
    ("Patient", {}),
    ("Practitioner", {}),
    ("CarePlan", {"_include": "CarePlan:subject"}),
    ("Communication", {}),
    ("Appointment", {}),
]


async def test_every_caller_reads_the_same_with_and_without_the_memo(demo: Api, plain: AsyncTestClient[Any]) -> None:
    compared = 0
    for who in WHO:
        for cls, params in NATIVE_FINDS:
            body = await _three_ways(demo, plain, f"/parse/classes/{cls}", _native(demo, who), params)
            for row in body.get("results", [])[:3]:
                await _three_ways(
                    demo,
                    plain,
                    f"/parse/classes/{cls}/{row['objectId']}",
                    _native(demo, who),
                    {"include": params.get("include", "")},
                )
                compared += 1
        for rtype, params in FHIR_SEARCHES:
            bundle = await _three_ways(demo, plain, f"/fhir/{rtype}", _fhir(demo, who), params)
            for entry in bundle.get("entry", [])[:3]:
                resource = entry.get("resource", {})
                if entry.get("search", {}).get("mode") == "match":
                    await _three_ways(
                        demo, plain, f"/fhir/{resource['resourceType']}/{resource['id']}", _fhir(demo, who)
                    )
                    compared += 1
    assert compared > 50  # the demo data gave every caller something to read


async def test_a_write_shows_on_the_next_read_of_a_remembered_row(demo: Api) -> None:
    results = (await demo.find("LabResult", "smith", order="-publishedAt", limit=1)).json()["results"]
    lab = results[0]["objectId"]
    for _ in range(2):
        assert (await demo.get(f"/parse/classes/LabResult/{lab}", "alice")).json()["resultValue"] != "42.5"
        fhir = (await demo.client.get(f"/fhir/Observation/{lab}", headers=_fhir(demo, "alice"))).json()
        assert fhir.get("note") != [{"text": "re-read after a write"}]
    r = await demo.put(
        f"/parse/classes/LabResult/{lab}", {"resultValue": "42.5", "notes": "re-read after a write"}, "smith"
    )
    assert r.status_code == 200, r.text
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", "alice")).json()["resultValue"] == "42.5"
    found = (await demo.find("LabResult", "alice", where=json.dumps({"objectId": lab}))).json()["results"]
    assert [row["resultValue"] for row in found] == ["42.5"]
    fhir = (await demo.client.get(f"/fhir/Observation/{lab}", headers=_fhir(demo, "alice"))).json()
    assert fhir["note"] == [{"text": "re-read after a write"}]
    assert fhir["meta"]["versionId"] == str(
        (await demo.get(f"/parse/classes/LabResult/{lab}", "alice")).json()["version"]
    )
    reread = await demo.client.get(f"/fhir/Observation/{lab}", headers=_fhir(demo, "alice"))
    assert reread.headers["etag"] == f'W/"{fhir["meta"]["versionId"]}"', "the ETag follows the write"


async def test_a_narrowed_acl_takes_effect_although_the_row_was_remembered(demo: Api) -> None:
    """The memo decodes; it never decides. A remembered row must be refused to the patient once
    the care team makes it provider-only (its ACL changes with it), by id, by query and by FHIR."""
    lab = (await demo.find("LabResult", "alice", order="-publishedAt", limit=1)).json()["results"][0]["objectId"]
    for _ in range(2):
        assert (await demo.get(f"/parse/classes/LabResult/{lab}", "alice")).status_code == 200
        assert (await demo.client.get(f"/fhir/Observation/{lab}", headers=_fhir(demo, "alice"))).status_code == 200
    r = await demo.put(f"/parse/classes/LabResult/{lab}", {"visibility": "provider-only"}, "smith")
    assert r.status_code == 200, r.text
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", "alice")).status_code == 404
    assert (await demo.client.get(f"/fhir/Observation/{lab}", headers=_fhir(demo, "alice"))).status_code == 404
    mine = (await demo.find("LabResult", "alice", order="-publishedAt")).json()["results"]
    assert lab not in {row["objectId"] for row in mine}
    assert (await demo.get(f"/parse/classes/LabResult/{lab}", "smith")).json()["visibility"] == "provider-only"


async def test_a_patients_newest_page_is_read_off_the_index_without_sorting(demo: Api) -> None:
    """Both doors' newest-first pages (migration 0009): SQLite reads them in index order and stops
    at the limit; a "TEMP B-TREE" step means it sorted all the patient's results for every page."""
    db = demo.client.app.state["db"]
    if db.dialect != "sqlite":
        pytest.skip("the query plan checked here is SQLite's")
    statements: list[str] = []
    driver = db._driver()
    driver.set_trace_callback(statements.append)
    try:
        await demo.find("LabResult", "alice", order="-publishedAt", limit=5)
        await demo.client.get(
            "/fhir/Observation", headers=_fhir(demo, "alice"), params={"_sort": "-date", "_count": "5"}
        )
    finally:
        driver.set_trace_callback(None)
    pages = [s for s in statements if 'FROM "LabResult"' in s and "ORDER BY" in s]
    # A first read runs each page twice: only the ids (rows kept under the class's change
    # counter would do, ``leanselect.fetch_built``), then the rows, as none are kept yet.
    assert len(pages) == 4 and sum(s.startswith('SELECT "LabResult"."objectId" \n') for s in pages) == 2, pages
    for sql in pages:
        plan = " | ".join(row[3] for row in driver.execute("EXPLAIN QUERY PLAN " + sql).fetchall())
        assert "USING INDEX ix_labresult_patient_" in plan and "TEMP B-TREE" not in plan, plan


async def test_no_credential_is_kept_after_users_and_sessions_are_read(demo: Api) -> None:
    db = demo.client.app.state["db"]
    for who in WHO:
        assert (await demo.get("/parse/users/me", who)).status_code == 200
        assert (await demo.get("/parse/sessions/me", who)).status_code == 200
        assert (await demo.find("_User", who)).status_code == 200
        await demo.find("PatientProfile", who, include="user")
    assert (await demo.find("_User", master=True)).status_code == 200
    kept = [entry.record for entry in db.memo.entries()]
    assert all("_hashed_password" not in r and "_token_hash" not in r for r in kept)
    if db.dialect == "sqlite":
        assert kept  # the memo was in use: profiles were kept, credentials were not
