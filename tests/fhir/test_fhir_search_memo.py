"""Remembered FHIR search statements (``gateway.store.statements``): one caller's statement never
serves another, rows are never remembered, and chains follow permission changes.

Each test repeats the same query text so the second run is the one the memo would answer.
"""

from __future__ import annotations

from gateway.fhir import search as fhir_search
from tests.api_support import Api, pointer
from tests.fhir.support import ids, lab, search


def _subjects(bundle: dict[str, object]) -> set[str]:
    entries = bundle.get("entry") or []
    assert isinstance(entries, list)
    return {e["resource"]["subject"]["reference"] for e in entries if e["search"]["mode"] == "match"}


async def test_same_search_text_serves_each_caller_their_own_compartment(demo: Api) -> None:
    alice, bob = f"Patient/{demo.ids['alice:patient']}", f"Patient/{demo.ids['bob:patient']}"
    for _ in range(2):
        assert _subjects(await search(demo, "/fhir/Observation", "alice", _sort="-date", _count="50")) == {alice}
        assert _subjects(await search(demo, "/fhir/Observation", "bob", _sort="-date", _count="50")) == {bob}
        assert _subjects(await search(demo, "/fhir/Observation", "smith", _sort="-date", _count="50")) == {alice}
        assert _subjects(await search(demo, "/fhir/Observation", "jones", _sort="-date", _count="50")) == {bob}


async def test_a_repeated_search_reuses_its_statement_but_reads_fresh_rows(demo: Api) -> None:
    patient = demo.ids["alice:patient"]
    before = ids(await search(demo, "/fhir/Observation", "alice", patient=patient, _sort="-date"))
    size = len(fhir_search._SEARCHES)
    new = await lab(demo, status="final")
    after = ids(await search(demo, "/fhir/Observation", "alice", patient=patient, _sort="-date"))
    assert len(fhir_search._SEARCHES) == size  # same statement ...
    assert new in after and new not in before  # ... new rows


async def test_joining_a_care_team_takes_effect_on_the_same_search(demo: Api) -> None:
    bob = demo.ids["bob:patient"]
    assert ids(await search(demo, "/fhir/Observation", "smith", patient=bob)) == []
    r = await demo.put(
        f"/parse/classes/PatientProfile/{bob}",
        {"careTeam": {"__op": "AddUnique", "objects": [pointer("ProviderProfile", demo.ids["smith:provider"])]}},
        master=True,
    )
    assert r.status_code == 200, r.text
    assert _subjects(await search(demo, "/fhir/Observation", "smith", patient=bob)) == {f"Patient/{bob}"}


async def test_chained_searches_follow_the_target_type_permissions(demo: Api) -> None:
    found = ids(await search(demo, "/fhir/Observation", "smith", **{"patient.name": "Alice"}))
    assert found
    r = await demo.put(
        "/parse/schemas/PatientProfile",
        {"classLevelPermissions": {"find": {"role:admin": True}, "get": {"*": True}}},
        master=True,
    )
    assert r.status_code == 200, r.text
    assert ids(await search(demo, "/fhir/Observation", "smith", **{"patient.name": "Alice"})) == []
