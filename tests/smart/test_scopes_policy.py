"""SMART scopes AND record rules on every FHIR interaction (catalog A04, A06; issue #5 "Scopes").

Driven through ``gateway.fhir.router.handle`` (what every HTTP request reaches) over the
real store, with principals resolved from real sessions and given scopes. Oracles come
from the native door with the master key, not from ``gateway.policy``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api_support import Api, pointer
from tests.fhir.support import lab
from tests.smart.scopes_support import (
    Door,
    call,
    diagnostics,
    match_ids,
    open_door,
    principal_of,
    system_token,
    user_token,
)


@pytest.fixture
async def door(demo: Api) -> AsyncIterator[Door]:
    async with open_door(demo) as opened:
        yield opened


async def _labs_by_patient(demo: Api) -> dict[str, list[dict[str, Any]]]:
    r = await demo.find("LabResult", master=True, limit=1000)
    assert r.status_code == 200
    out: dict[str, list[dict[str, Any]]] = {}
    for row in r.json()["results"]:
        out.setdefault(row["patient"]["objectId"], []).append(row)
    return out


async def _join_care_team(demo: Api, patient_key: str, provider_key: str) -> None:
    """Put a provider on another patient's care team too (a provider who could see more)."""
    patient = demo.ids[patient_key]
    current = (await demo.get(f"/parse/classes/PatientProfile/{patient}", master=True)).json()
    team = [p["objectId"] for p in current.get("careTeam") or []] + [demo.ids[provider_key]]
    r = await demo.put(
        f"/parse/classes/PatientProfile/{patient}",
        {"careTeam": [pointer("ProviderProfile", p) for p in team]},
        master=True,
    )
    assert r.status_code == 200, r.text


def _published(rows: list[dict[str, Any]]) -> set[str]:
    return {r["objectId"] for r in rows if r["status"] in ("final", "corrected", "amended")}


# --------------------------------------------------------------------------- patient compartment


async def test_patient_token_reads_only_its_compartment(demo: Api, door: Door) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    labs = await _labs_by_patient(demo)
    token = await user_token(door, "alice", "launch/patient patient/*.rs", patient=alice)

    assert (await call(door, token, "GET", f"Patient/{alice}")).status == 200
    missing = await call(door, token, "GET", "Patient/doesnotexist0")
    for url in (
        f"Patient/{bob}",
        f"Observation/{labs[bob][0]['objectId']}",
        f"Observation/{labs[bob][0]['objectId']}/_history",
        f"Observation/{labs[bob][0]['objectId']}/_history/1",
    ):
        denied = await call(door, token, "GET", url)
        assert (denied.status, denied.body) == (missing.status, missing.body) == (404, missing.body), url

    assert set(match_ids(await call(door, token, "GET", "Observation"))) == _published(labs[alice])
    assert match_ids(await call(door, token, "GET", f"Observation?patient={bob}")) == []
    assert match_ids(await call(door, token, "GET", f"Observation?subject=Patient/{bob}")) == []
    assert match_ids(await call(door, token, "GET", f"Observation?_id={labs[bob][0]['objectId']}")) == []
    assert match_ids(await call(door, token, "GET", "Patient")) == [alice]
    counted = await call(door, token, "GET", "Observation?_summary=count")
    assert counted.body is not None and counted.body["total"] == len(_published(labs[alice]))


async def test_provider_with_patient_scope_is_confined_to_the_launch_patient(demo: Api, door: Door) -> None:
    """Dr. Smith is on both care teams; a patient/ token launched for Alice still sees only Alice."""
    await _join_care_team(demo, "bob:patient", "smith:provider")
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    labs = await _labs_by_patient(demo)
    session = await principal_of(door, "smith")
    assert (await call(door, session, "GET", f"Patient/{bob}")).status == 200  # the user's own rules reach Bob

    token = await user_token(door, "smith", "launch/patient patient/*.cruds", patient=alice)
    assert (await call(door, token, "GET", f"Patient/{bob}")).status == 404
    assert (await call(door, token, "GET", f"Observation/{labs[bob][0]['objectId']}")).status == 404
    assert (await call(door, token, "GET", f"Observation/{labs[bob][0]['objectId']}/_history")).status == 404
    assert match_ids(await call(door, token, "GET", "Patient")) == [alice]
    seen = set(match_ids(await call(door, token, "GET", "Observation?_count=1000")))
    assert seen == {r["objectId"] for r in labs[alice]}  # the care team sees preliminary results too
    assert match_ids(await call(door, token, "GET", f"Observation?patient={bob}")) == []

    # writes stay in the compartment too: an Observation for Bob is refused and not stored
    before = len((await _labs_by_patient(demo))[bob])
    created = await call(door, token, "POST", "Observation", _observation(bob))
    assert created.status in (403, 404, 422), created.body
    assert len((await _labs_by_patient(demo))[bob]) == before
    assert (await call(door, token, "POST", "Observation", _observation(alice))).status == 201
    bob_lab = labs[bob][0]["objectId"]
    assert (await call(door, token, "DELETE", f"Observation/{bob_lab}")).status == 404
    assert (await demo.get(f"/parse/classes/LabResult/{bob_lab}", master=True)).status_code == 200

    # the same user with user/ scopes has their full record rules
    wide = await user_token(door, "smith", "user/*.rs")
    assert (await call(door, wide, "GET", f"Patient/{bob}")).status == 200
    assert set(match_ids(await call(door, wide, "GET", "Patient"))) == {alice, bob}


async def test_admin_with_patient_scope_is_confined_too(demo: Api, door: Door) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    token = await user_token(door, "admin", "launch/patient patient/*.rs patient/AuditEvent.rs", patient=alice)
    assert match_ids(await call(door, token, "GET", "Patient")) == [alice]
    assert (await call(door, token, "GET", f"Patient/{bob}")).status == 404
    events = set(match_ids(await call(door, token, "GET", "AuditEvent?_count=1000")))
    audit = (await demo.find("AuditLog", master=True, limit=1000)).json()["results"]
    about_alice = {a["objectId"] for a in audit if (a.get("patient") or {}).get("objectId") == alice}
    assert events and events <= about_alice


def _observation(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 99, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    }


async def test_patient_scope_without_a_patient_in_context_reaches_nothing(demo: Api, door: Door) -> None:
    token = await user_token(door, "smith", "patient/*.rs")  # no launch patient, not a patient user
    resp = await call(door, token, "GET", "Observation")
    assert resp.status == 403 and "launch/patient" in diagnostics(resp)


# --------------------------------------------------------------------------- too few scopes: 403


async def test_missing_scope_is_403_naming_it(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    labs = await _labs_by_patient(demo)
    token = await user_token(door, "alice", "launch/patient patient/Observation.rs", patient=alice)
    resp = await call(door, token, "GET", f"Patient/{alice}")
    assert resp.status == 403 and "patient/Patient.r" in diagnostics(resp)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    assert 'scope="patient/Patient.r"' in resp.headers["WWW-Authenticate"]
    resp = await call(door, token, "GET", "Patient")
    assert resp.status == 403 and "patient/Patient.s" in diagnostics(resp)
    resp = await call(door, token, "POST", "Observation", _observation(alice))
    assert resp.status == 403 and "patient/Observation.c" in diagnostics(resp)
    # a 403 for the type comes before (and regardless of) whether the id exists
    assert (await call(door, token, "GET", "Patient/doesnotexist0")).status == 403

    read_only = await user_token(door, "alice", "launch/patient patient/Observation.r", patient=alice)
    own = next(iter(_published(labs[alice])))
    assert (await call(door, read_only, "GET", f"Observation/{own}")).status == 200
    assert (await call(door, read_only, "GET", f"Observation/{own}/_history")).status == 200
    resp = await call(door, read_only, "GET", "Observation")
    assert resp.status == 403 and "patient/Observation.s" in diagnostics(resp)

    v1 = await user_token(door, "alice", "launch/patient patient/Observation.read", patient=alice)
    resp = await call(door, v1, "GET", "CarePlan")
    assert resp.status == 403 and "patient/CarePlan.read" in diagnostics(resp)


async def test_identity_scopes_alone_reach_no_resource(demo: Api, door: Door) -> None:
    token = await user_token(door, "alice", "openid fhirUser launch/patient", patient=demo.ids["alice:patient"])
    for url in ("Patient", "Observation", "Practitioner", f"Patient/{demo.ids['alice:patient']}"):
        assert (await call(door, token, "GET", url)).status == 403, url


async def test_user_token_cannot_use_system_scopes(demo: Api, door: Door) -> None:
    """A scope string never lifts a user to the master-like system level."""
    token = await user_token(door, "alice", "system/*.cruds")
    resp = await call(door, token, "GET", "Observation")
    assert resp.status == 403 and "Observation.s" in diagnostics(resp)


# --------------------------------------------------------------------------- v2 query restrictions


async def test_restricted_scope_answers_only_within_its_restriction(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    labs = await _labs_by_patient(demo)
    final = {r["objectId"] for r in labs[alice] if r["status"] == "final"}
    others = {r["objectId"] for r in labs[alice]} - final
    assert final and others
    token = await user_token(door, "smith", "user/Observation.rs?status=final")

    assert set(match_ids(await call(door, token, "GET", f"Observation?patient={alice}&_count=1000"))) == final
    total = await call(door, token, "GET", f"Observation?patient={alice}&_total=accurate")
    assert total.body is not None and total.body["total"] == len(final)
    # asking for what the restriction excludes finds nothing (the restriction is ANDed, not replaced)
    assert match_ids(await call(door, token, "GET", f"Observation?patient={alice}&status=corrected")) == []
    for oid in others:
        assert (await call(door, token, "GET", f"Observation/{oid}")).status == 404
        assert (await call(door, token, "GET", f"Observation/{oid}/_history")).status == 404
        assert (await call(door, token, "GET", f"Observation/{oid}/_history/1")).status == 404
    for oid in final:
        assert (await call(door, token, "GET", f"Observation/{oid}")).status == 200

    # paging stays inside the restriction on every page
    paged: list[str] = []
    resp = await call(door, token, "GET", f"Observation?patient={alice}&_count=2")
    while True:
        paged += match_ids(resp)
        assert resp.body is not None
        nxt = next((item["url"] for item in resp.body["link"] if item["relation"] == "next"), None)
        if nxt is None:
            break
        resp = await call(door, token, "GET", nxt.split("/fhir/", 1)[1])
    assert sorted(paged) == sorted(final)


async def test_category_restrictions_and_their_union(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    labs = await _labs_by_patient(demo)
    mine = _published(labs[alice])
    lab_only = await user_token(
        door, "alice", "patient/Observation.rs?category=laboratory launch/patient", patient=alice
    )
    assert set(match_ids(await call(door, lab_only, "GET", "Observation"))) == mine
    system_code = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
    with_system = await user_token(door, "alice", f"patient/Observation.rs?category={system_code}", patient=alice)
    assert set(match_ids(await call(door, with_system, "GET", "Observation"))) == mine

    vitals = await user_token(door, "alice", "patient/Observation.rs?category=vital-signs", patient=alice)
    assert match_ids(await call(door, vitals, "GET", "Observation")) == []
    assert (await call(door, vitals, "GET", f"Observation/{next(iter(mine))}")).status == 404

    both = await user_token(
        door,
        "alice",
        "patient/Observation.rs?category=vital-signs patient/Observation.rs?category=laboratory",
        patient=alice,
    )
    assert set(match_ids(await call(door, both, "GET", "Observation"))) == mine

    unknown = await user_token(door, "alice", "patient/Observation.rs?nonsense=1", patient=alice)
    assert match_ids(await call(door, unknown, "GET", "Observation")) == []


async def test_restricted_scope_writes_only_within_its_restriction(demo: Api, door: Door) -> None:
    """A v2 restricted write scope: a create or update must leave the resource inside the restriction
    (else 403 and nothing stored); an update or delete of a resource outside it is 404 (as if absent)."""
    alice = demo.ids["alice:patient"]
    labs = (await _labs_by_patient(demo))[alice]
    final = next(r["objectId"] for r in labs if r["status"] == "final")
    corrected = next(r["objectId"] for r in labs if r["status"] == "corrected")
    token = await user_token(door, "smith", "user/Observation.cruds?status=final")
    count = len(labs)

    assert (await call(door, token, "POST", "Observation", _observation(alice))).status == 201
    prelim = {**_observation(alice), "status": "preliminary"}
    resp = await call(door, token, "POST", "Observation", prelim)
    assert resp.status == 403 and "status=final" in diagnostics(resp)
    resp = await call(door, token, "POST", "Observation", prelim, {"Prefer": "return=minimal"})
    assert resp.status == 403
    assert len((await _labs_by_patient(demo))[alice]) == count + 1

    session = await principal_of(door, "smith")
    current = (await call(door, session, "GET", f"Observation/{final}")).body
    assert current is not None
    kept = {**current, "note": [{"text": "reviewed"}]}
    assert (await call(door, token, "PUT", f"Observation/{final}", kept)).status == 200, "update inside"
    moved = {**current, "status": "amended"}
    resp = await call(door, token, "PUT", f"Observation/{final}", moved)
    assert resp.status == 403 and "status=final" in diagnostics(resp)
    assert (await call(door, session, "PUT", f"Observation/{final}", moved)).status == 200  # rules allow it
    assert (await call(door, session, "PUT", f"Observation/{final}", current)).status == 200  # back to final
    versions = (await call(door, session, "GET", f"Observation/{final}/_history")).body
    assert versions is not None and len(versions["entry"]) == 4  # seed, note, amended, final: no refused version

    outside = (await call(door, session, "GET", f"Observation/{corrected}")).body
    assert outside is not None
    assert (await call(door, token, "PUT", f"Observation/{corrected}", outside)).status == 404
    assert (await call(door, token, "DELETE", f"Observation/{corrected}")).status == 404
    assert (await demo.get(f"/parse/classes/LabResult/{corrected}", master=True)).status_code == 200
    assert (await call(door, token, "DELETE", f"Observation/{final}")).status == 204


# --------------------------------------------------------------------------- system/ scopes


async def test_system_token_is_limited_by_its_scopes(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    labs = await _labs_by_patient(demo)
    everything = {r["objectId"] for rows in labs.values() for r in rows}
    reader = system_token("system/Observation.rs")
    assert set(match_ids(await call(door, reader, "GET", "Observation?_count=1000"))) == everything
    oid = labs[alice][0]["objectId"]
    assert (await call(door, reader, "GET", f"Observation/{oid}")).status == 200
    resp = await call(door, reader, "GET", f"Patient/{alice}")
    assert resp.status == 403 and "system/Patient.r" in diagnostics(resp)
    resp = await call(door, reader, "POST", "Observation", _observation(alice))
    assert resp.status == 403 and "system/Observation.c" in diagnostics(resp)
    resp = await call(door, reader, "DELETE", f"Observation/{oid}")
    assert resp.status == 403 and "system/Observation.d" in diagnostics(resp)
    resp = await call(door, reader, "GET", "AuditEvent")
    assert resp.status == 403 and "system/AuditEvent.s" in diagnostics(resp)
    # patient/ and user/ scopes mean nothing to a client acting for itself
    assert (await call(door, system_token("patient/*.cruds user/*.cruds"), "GET", "Observation")).status == 403

    writer = system_token("system/Observation.cud system/Observation.rs system/AuditEvent.rs")
    created = await call(door, writer, "POST", "Observation", _observation(alice))
    assert created.status == 201, created.body
    assert match_ids(await call(door, writer, "GET", "AuditEvent?_count=1"))


async def test_unscoped_principals_keep_their_rules(demo: Api, door: Door) -> None:
    """Parse sessions are not scope-limited (DESIGN.md), and AuditEvent stays admin-only for them."""
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    session = await principal_of(door, "alice")
    assert (await call(door, session, "GET", f"Patient/{alice}")).status == 200
    assert (await call(door, session, "GET", f"Patient/{bob}")).status == 404
    assert (await call(door, session, "GET", "AuditEvent")).status == 403


# --------------------------------------------------------------------------- AuditEvent


async def test_audit_events_follow_scopes_and_record_rules(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    await lab(demo, patient=alice, status="final")  # one more audited write about Alice
    audit = (await demo.find("AuditLog", master=True, limit=1000)).json()["results"]
    about_alice = {a["objectId"] for a in audit if (a.get("patient") or {}).get("objectId") == alice}
    assert about_alice and len(about_alice) < len(audit)

    patient = await user_token(door, "alice", "launch/patient patient/AuditEvent.rs", patient=alice)
    seen = set(match_ids(await call(door, patient, "GET", "AuditEvent?_count=1000")))
    # reads may be audited too, so the log grows while we look: compare with the log as it is now
    now = (await demo.find("AuditLog", master=True, limit=1000)).json()["results"]
    assert about_alice <= seen <= {a["objectId"] for a in now if (a.get("patient") or {}).get("objectId") == alice}
    foreign = next(a["objectId"] for a in audit if a["objectId"] not in about_alice)
    assert (await call(door, patient, "GET", f"AuditEvent/{foreign}")).status == 404
    assert (await call(door, patient, "GET", f"AuditEvent/{next(iter(about_alice))}")).status == 200

    provider = await user_token(door, "smith", "user/AuditEvent.rs")  # the record rules give providers none
    assert match_ids(await call(door, provider, "GET", "AuditEvent")) == []
    admin = await user_token(door, "admin", "user/AuditEvent.rs")
    assert {a["objectId"] for a in audit} <= set(match_ids(await call(door, admin, "GET", "AuditEvent?_count=1000")))
    # AuditEvent stays unwritable whatever the scopes say
    assert (await call(door, system_token("system/*.cruds"), "POST", "AuditEvent", {})).status == 405


# --------------------------------------------------------------------------- conditional create


async def test_conditional_create_needs_search_too(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    create_only = await user_token(door, "smith", "user/Observation.c")
    resp = await call(
        door, create_only, "POST", "Observation", _observation(alice), {"If-None-Exist": f"patient={alice}"}
    )
    assert resp.status == 403 and "user/Observation.s" in diagnostics(resp)
    both = await user_token(door, "smith", "user/Observation.cs")
    resp = await call(door, both, "POST", "Observation", _observation(alice), {"If-None-Exist": "code=0000-0"})
    assert resp.status == 201, resp.body


# --------------------------------------------------------------------------- moving a record out


async def test_an_update_cannot_move_a_record_out_of_reach(demo: Api, door: Door) -> None:
    """Re-pointing an Observation at another patient would write into that patient's record: refused
    for a provider outside the new patient's care team and for a patient/ grant (the field rules
    keep ``LabResult.patient`` fixed after creation)."""
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    own = next(iter(_published((await _labs_by_patient(demo))[alice])))
    session = await principal_of(door, "smith")  # on Alice's care team, not on Bob's
    current = await call(door, session, "GET", f"Observation/{own}")
    assert current.status == 200 and current.body is not None
    moved = {**current.body, "subject": {"reference": f"Patient/{bob}"}}
    resp = await call(door, session, "PUT", f"Observation/{own}", moved)
    assert resp.status in (403, 404, 422), resp.body
    row = (await demo.get(f"/parse/classes/LabResult/{own}", master=True)).json()
    assert row["patient"]["objectId"] == alice

    await _join_care_team(demo, "bob:patient", "smith:provider")
    confined = await user_token(door, "smith", "launch/patient patient/Observation.cruds", patient=alice)
    resp = await call(door, confined, "PUT", f"Observation/{own}", moved)
    assert resp.status in (403, 404, 422), resp.body
    assert (await demo.get(f"/parse/classes/LabResult/{own}", master=True)).json()["patient"]["objectId"] == alice
