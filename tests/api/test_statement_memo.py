"""Remembered find statements (``gateway.store.statements``) never serve one caller's query to another,
and never outlive a change of roles or of a sub-query class's permissions.

The memo is keyed by the query as sent and the caller's policy identity; these tests run the
same query text as different callers and across changes, and fail if any of those inputs
were missing from the key.
"""

from __future__ import annotations

import json

from gateway.native import objects as native_objects
from tests.api_support import Api, pointer

LATEST = {"order": "-publishedAt", "limit": "50"}


def _patients(response: object) -> set[str]:
    body = response.json()  # type: ignore[attr-defined]
    return {r["patient"]["objectId"] for r in body["results"]}


async def test_same_query_text_serves_each_caller_their_own_rows(demo: Api) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    for _ in range(2):  # the second round runs from the memo
        assert _patients(await demo.find("LabResult", "alice", **LATEST)) == {alice}
        assert _patients(await demo.find("LabResult", "bob", **LATEST)) == {bob}
        assert _patients(await demo.find("LabResult", "smith", **LATEST)) == {alice}
        assert _patients(await demo.find("LabResult", "jones", **LATEST)) == {bob}


async def test_a_repeated_query_is_served_from_the_memo(demo: Api) -> None:
    where = json.dumps({"status": "final"})
    first = await demo.find("LabResult", "alice", where=where, **LATEST)
    size = len(native_objects._FINDS)
    again = await demo.find("LabResult", "alice", where=where, **LATEST)
    assert len(native_objects._FINDS) == size  # no new entry: the statement was reused
    assert again.json() == first.json() and first.json()["results"]


async def test_joining_a_care_team_takes_effect_on_the_same_query(demo: Api) -> None:
    bob = demo.ids["bob:patient"]
    where = json.dumps({"patient": pointer("PatientProfile", bob)})
    before = await demo.find("LabResult", "smith", where=where, **LATEST)
    assert before.status_code == 200 and before.json()["results"] == []
    r = await demo.put(
        f"/parse/classes/PatientProfile/{bob}",
        {"careTeam": {"__op": "AddUnique", "objects": [pointer("ProviderProfile", demo.ids["smith:provider"])]}},
        master=True,
    )
    assert r.status_code == 200, r.text
    after = await demo.find("LabResult", "smith", where=where, **LATEST)
    assert after.status_code == 200 and _patients(after) == {bob}


async def test_sub_query_statements_follow_the_other_class_permissions(demo: Api) -> None:
    where = json.dumps({"orderedBy": {"$inQuery": {"className": "ProviderProfile", "where": {}}}})
    first = await demo.find("LabResult", "alice", where=where, **LATEST)
    assert first.status_code == 200 and first.json()["results"]
    r = await demo.put(
        "/parse/schemas/ProviderProfile",
        {"classLevelPermissions": {"find": {"role:admin": True}, "get": {"*": True}}},
        master=True,
    )
    assert r.status_code == 200, r.text
    refused = await demo.find("LabResult", "alice", where=where, **LATEST)
    assert refused.status_code == 400 and refused.json()["code"] == 119, refused.text


async def test_count_uses_the_same_remembered_predicate(demo: Api) -> None:
    for _ in range(2):
        r = await demo.find("LabResult", "alice", count="1", **LATEST)
        body = r.json()
        assert body["count"] == len(body["results"]) > 0
        assert _patients(r) == {demo.ids["alice:patient"]}
