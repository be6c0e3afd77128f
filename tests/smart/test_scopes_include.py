"""Scopes on what a search pulls in: ``_include``/``_revinclude`` targets and chained parameters
(catalog A04; issue #5 "Enforced on every ... _include/_revinclude target")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.fhir.context import FhirResponse
from tests.api_support import Api
from tests.smart.scopes_support import Door, call, match_ids, open_door, principal_of, user_token
from tests.smart.test_scopes_policy import _join_care_team, _labs_by_patient, _published


@pytest.fixture
async def door(demo: Api) -> AsyncIterator[Door]:
    async with open_door(demo) as opened:
        yield opened


def included(resp: FhirResponse) -> set[str]:
    assert resp.status == 200, resp.body
    assert resp.body is not None
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in resp.body.get("entry", [])
        if e["search"]["mode"] == "include"
    }


def _of_type(refs: set[str], rtype: str) -> set[str]:
    return {r.split("/", 1)[1] for r in refs if r.startswith(rtype + "/")}


async def test_confined_provider_includes_and_revincludes_only_the_launch_patient(demo: Api, door: Door) -> None:
    await _join_care_team(demo, "bob:patient", "smith:provider")
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    labs = await _labs_by_patient(demo)
    token = await user_token(door, "smith", "launch/patient patient/*.rs", patient=alice)

    resp = await call(door, token, "GET", "Observation?_include=Observation:patient&_count=1000")
    assert included(resp) == {f"Patient/{alice}"}
    resp = await call(door, token, "GET", "Patient?_revinclude=Observation:patient&_count=1000")
    assert match_ids(resp) == [alice]
    assert _of_type(included(resp), "Observation") == {r["objectId"] for r in labs[alice]}
    # naming Bob explicitly finds nothing to include from
    resp = await call(door, token, "GET", f"Patient?_id={bob}&_revinclude=Observation:patient")
    assert match_ids(resp) == [] and included(resp) == set()
    # a chained parameter cannot reach into Bob's compartment either
    resp = await call(door, token, "GET", "Observation?patient.identifier=DEMO-0002")
    assert match_ids(resp) == []

    # the same user's session reaches Bob through the include (so the confinement is the token's)
    session = await principal_of(door, "smith")
    resp = await call(door, session, "GET", f"Patient?_id={bob}&_revinclude=Observation:patient&_count=1000")
    assert _of_type(included(resp), "Observation") == {r["objectId"] for r in labs[bob]}


async def test_patient_token_includes_stay_in_compartment(demo: Api, door: Door) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    token = await user_token(door, "alice", "launch/patient patient/*.rs", patient=alice)
    for url in (
        "Observation?_include=Observation:subject&_include=Observation:patient",
        f"Observation?subject=Patient/{bob}&_include=Observation:subject",
        "CarePlan?_include=CarePlan:subject",
        "Communication?_include=Communication:sender&_include=Communication:recipient",
        f"Patient?_id={alice},{bob}&_revinclude=Observation:subject&_revinclude=CarePlan:patient",
    ):
        resp = await call(door, token, "GET", url)
        assert f"Patient/{bob}" not in included(resp), url
        assert bob not in match_ids(resp), url
        assert _of_type(included(resp), "Patient") <= {alice}, url


async def test_include_targets_need_their_own_scope(demo: Api, door: Door) -> None:
    """An included type the token has no scope for is left out (the match itself is allowed)."""
    alice, smith = demo.ids["alice:patient"], demo.ids["smith:provider"]
    narrow = await user_token(door, "alice", "launch/patient patient/Observation.rs", patient=alice)
    resp = await call(door, narrow, "GET", "Observation?_include=Observation:patient&_include=Observation:performer")
    assert match_ids(resp) and included(resp) == set()
    wide = await user_token(
        door, "alice", "launch/patient patient/Observation.rs patient/Patient.r patient/Practitioner.r", patient=alice
    )
    resp = await call(door, wide, "GET", "Observation?_include=Observation:patient&_include=Observation:performer")
    assert included(resp) == {f"Patient/{alice}", f"Practitioner/{smith}"}
    # revinclude of a type without scope: nothing comes back with the Patient
    only_patient = await user_token(door, "alice", "launch/patient patient/Patient.rs", patient=alice)
    resp = await call(door, only_patient, "GET", "Patient?_revinclude=Observation:patient")
    assert match_ids(resp) == [alice] and included(resp) == set()


async def test_revinclude_obeys_query_restrictions(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    labs = await _labs_by_patient(demo)
    final = {r["objectId"] for r in labs[alice] if r["status"] == "final"}
    assert final != _published(labs[alice])
    token = await user_token(
        door, "alice", "launch/patient patient/Patient.rs patient/Observation.rs?status=final", patient=alice
    )
    resp = await call(door, token, "GET", "Patient?_revinclude=Observation:patient&_count=1000")
    assert _of_type(included(resp), "Observation") == final


async def test_audit_events_come_along_only_with_their_scope(demo: Api, door: Door) -> None:
    """An admin could read every AuditEvent; launched for Alice with patient/ scopes, a revinclude
    brings only the entries about Alice, and none at all without an AuditEvent scope."""
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    with_scope = await user_token(
        door, "admin", "launch/patient patient/Patient.rs patient/AuditEvent.rs", patient=alice
    )
    url = f"Patient?_id={alice},{bob}&_revinclude=AuditEvent:patient&_count=1000"
    got = _of_type(included(await call(door, with_scope, "GET", url)), "AuditEvent")
    now = (await demo.find("AuditLog", master=True, limit=1000)).json()["results"]
    assert got and got <= {a["objectId"] for a in now if (a.get("patient") or {}).get("objectId") == alice}
    wide = await user_token(door, "admin", "user/Patient.rs user/AuditEvent.rs")
    everyone = _of_type(included(await call(door, wide, "GET", url)), "AuditEvent")
    assert any((a.get("patient") or {}).get("objectId") == bob for a in now if a["objectId"] in everyone)
    without = await user_token(door, "admin", "launch/patient patient/Patient.rs", patient=alice)
    assert _of_type(included(await call(door, without, "GET", url)), "AuditEvent") == set()
