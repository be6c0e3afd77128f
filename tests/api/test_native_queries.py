"""Queries through the API: visibility, options, include, limits (catalog A02, A03, C04, C05)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.api_support import Api, pointer


def w(doc: Any) -> str:
    return json.dumps(doc)


async def _results(demo: Api, cls: str, who: str | None, **params: Any) -> list[dict[str, Any]]:
    r = await demo.find(cls, who, **params)
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


async def test_patient_unconstrained_query_sees_only_own_published(demo: Api) -> None:
    alice = await _results(demo, "LabResult", "alice")
    smith = await _results(demo, "LabResult", "smith")
    assert alice and all(r["patient"]["objectId"] == demo.ids["alice:patient"] for r in alice)
    assert all(r["status"] in ("final", "corrected", "amended") for r in alice)
    assert len(smith) == len(alice) + 1, "dr.smith also sees the preliminary result"
    bob = await _results(demo, "LabResult", "bob")
    assert {r["objectId"] for r in bob}.isdisjoint({r["objectId"] for r in alice})


async def test_where_on_another_patients_pointer_returns_nothing(demo: Api) -> None:
    bob_ptr = pointer("PatientProfile", demo.ids["bob:patient"])
    assert await _results(demo, "LabResult", "alice", where=w({"patient": bob_ptr})) == []
    r = await demo.find("LabResult", "alice", where=w({"patient": bob_ptr}), count=1, limit=0)
    assert r.json() == {"results": [], "count": 0}


async def test_count_limit_skip_order_keys(demo: Api) -> None:
    r = await demo.find("LabResult", "smith", count=1, limit=2, order="-effectiveAt")
    body = r.json()
    assert body["count"] == 8 and len(body["results"]) == 2
    all_rows = await _results(demo, "LabResult", "smith", order="-effectiveAt")
    assert [x["objectId"] for x in all_rows[:2]] == [x["objectId"] for x in body["results"]]
    skipped = await _results(demo, "LabResult", "smith", order="-effectiveAt", skip=2, limit=2)
    assert [x["objectId"] for x in skipped] == [x["objectId"] for x in all_rows[2:4]]
    dates = [x["effectiveAt"]["iso"] for x in all_rows]
    assert dates == sorted(dates, reverse=True)
    slim = await _results(demo, "LabResult", "smith", keys="testCode,status", limit=1)
    assert set(slim[0]) == {"objectId", "createdAt", "updatedAt", "testCode", "status"}


async def test_limit_is_clamped_silently(demo: Api) -> None:
    r = await demo.find("LabResult", "smith", limit=1_000_000)
    assert r.status_code == 200 and len(r.json()["results"]) == 8
    r = await demo.find("LabResult", "smith", limit=-1)
    assert r.status_code == 400 and r.json()["code"] == 102


async def test_operators_through_the_api(demo: Api) -> None:
    cases = {
        w({"status": "corrected"}): 1,
        w({"status": {"$in": ["final", "corrected"]}}): 7,
        w({"status": {"$ne": "final"}}): 2,
        w({"notes": {"$exists": True}}): 1,
        w({"$or": [{"testCode": "2345-7"}, {"testCode": "718-7"}]}): 2,
        w({"testName": {"$regex": "^Hemo", "$options": "i"}}): 2,
        w({"orderedBy": {"$inQuery": {"className": "ProviderProfile", "where": {"npi": "1999999984"}}}}): 8,
    }
    for where, expected in cases.items():
        assert len(await _results(demo, "LabResult", "smith", where=where)) == expected, where


async def test_include_respects_each_objects_acl(demo: Api) -> None:
    rows = await _results(demo, "LabResult", "alice", include="patient.user,orderedBy", limit=1)
    assert rows[0]["patient"]["__type"] == "Object" and rows[0]["patient"]["medicalRecordNumber"] == "DEMO-0001"
    assert rows[0]["patient"]["user"]["username"] == "alice@example.org"
    assert rows[0]["orderedBy"]["__type"] == "Object"
    plans = await _results(demo, "TreatmentPlan", "alice", include="createdBy,provider.user")
    for plan in plans:
        assert plan.get("createdBy", {}).get("__type") != "Object", "another user's _User is never expanded"
        provider_user = plan["provider"].get("user", {})
        assert provider_user.get("__type") != "Object" and "email" not in provider_user
    r = await demo.find("LabResult", "alice", include="patient.user.x.y.z")
    assert r.status_code == 400 and r.json()["code"] == 102


async def test_subqueries_cannot_read_hidden_classes_or_rows(demo: Api) -> None:
    """A02: constraints on data the caller cannot see are never evaluated against it."""
    probes = [
        {
            "patient": {
                "$inQuery": {"className": "PatientProfile", "where": {"medicalRecordNumber": {"$regex": "^DEMO-0002"}}}
            }
        },
        {"patient": {"$select": {"query": {"className": "PatientProfile", "where": {}}, "key": "objectId"}}},
    ]
    for probe in probes:
        rows = await _results(demo, "LabResult", "alice", where=w(probe))
        assert all(r["patient"]["objectId"] == demo.ids["alice:patient"] for r in rows)
    r = await demo.find(
        "LabResult", "alice", where=w({"patient": {"$inQuery": {"className": "_Session", "where": {}}}})
    )
    assert r.status_code in (200, 400, 404)
    if r.status_code == 200:
        assert r.json()["results"] == []
    r = await demo.find("_User", "alice", where=w({"email": {"$regex": "^bob"}}))
    assert r.status_code == 400 and r.json()["code"] == 119


async def test_differential_hidden_value_does_not_change_answers(demo: Api) -> None:
    """A02 differential: change only a value alice cannot see; every answer she gets stays identical."""
    query = w(
        {
            "patient": {
                "$inQuery": {"className": "PatientProfile", "where": {"medicalRecordNumber": {"$regex": "0002$"}}}
            }
        }
    )
    before = await demo.find("LabResult", "alice", where=query, count=1)
    r = await demo.put(
        f"/parse/classes/PatientProfile/{demo.ids['bob:patient']}", {"medicalRecordNumber": "DEMO-0001X"}, master=True
    )
    assert r.status_code == 200
    after = await demo.find("LabResult", "alice", where=query, count=1)
    assert before.json() == after.json() == {"results": [], "count": 0}


@pytest.mark.parametrize(
    "where, code",
    [
        ({"status": {"$nope": 1}}, 102),
        ({"status": {"$in": "final"}}, 102),
        ({"_rperm": {"$in": ["*"]}}, 105),
        ({"$where": "sleep(1000)"}, 102),
        ({"status": {"$regex": "a" * 5000}}, 102),
    ],
)
async def test_bad_where_documents(demo: Api, where: dict[str, Any], code: int) -> None:
    r = await demo.find("LabResult", "smith", where=w(where))
    assert r.status_code == 400 and r.json()["code"] == code, r.text


async def test_nesting_and_in_size_limits(demo: Api) -> None:
    doc: dict[str, Any] = {"status": "final"}
    for _ in range(50):
        doc = {"$or": [doc]}
    r = await demo.find("LabResult", "smith", where=w(doc))
    assert r.status_code == 400 and r.json()["code"] == 102
    big = {"_method": "GET", "where": {"status": {"$in": [str(i) for i in range(20_000)]}}}
    r = await demo.post("/parse/classes/LabResult", big, "smith")
    assert r.status_code == 400 and r.json()["code"] == 102
    r = await demo.client.get("/parse/classes/LabResult", params={"where": "{not json"}, headers=demo.headers("smith"))
    assert r.status_code == 400 and r.json()["code"] == 107


async def test_catastrophic_regex_is_fast(demo: Api) -> None:
    await demo.put(
        f"/parse/classes/PatientProfile/{demo.ids['alice:patient']}", {"displayName": "a" * 3000 + "!"}, "smith"
    )
    start = time.perf_counter()
    r = await demo.find("PatientProfile", "smith", where=w({"displayName": {"$regex": "^(a+)+$"}}))
    assert time.perf_counter() - start < 1.0
    assert r.status_code in (200, 400)


async def test_anonymous_find_is_refused_like_empty(demo: Api) -> None:
    r = await demo.find("LabResult", None)
    assert r.status_code == 404 and r.json()["code"] == 101


async def test_nul_characters_are_a_clean_400(demo: Api) -> None:
    r = await demo.find("PatientProfile", "smith", where=w({"displayName": "a\u0000"}))
    assert r.status_code == 400 and r.json()["code"] == 107
    r = await demo.put(
        f"/parse/classes/PatientProfile/{demo.ids['alice:patient']}", {"displayName": "a\u0000b"}, "smith"
    )
    assert r.status_code == 400 and r.json()["code"] == 107
