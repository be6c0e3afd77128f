"""Scopes on type and system history (catalog A06): a patient-launch token sees only versions in its
compartment, a token without the search permission gets 403 naming it, and v2 restrictions hold."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.fhir import router
from gateway.fhir.context import FhirRequest, FhirResponse
from gateway.policy.principal import Principal
from tests.api_support import Api
from tests.smart.scopes_support import Door, call, diagnostics, open_door, user_token
from tests.smart.test_scopes_policy import _join_care_team, _labs_by_patient


@pytest.fixture
async def door(demo: Api) -> AsyncIterator[Door]:
    async with open_door(demo) as opened:
        yield opened


async def _system_history(door: Door, principal: Principal) -> FhirResponse:
    req = FhirRequest("GET", principal, [("_count", "1000")])
    return await router.handle_system(door.ctx, "history", req)


def _versions(resp: FhirResponse) -> list[tuple[str, str]]:
    """(type, id) of every history entry, deleted ones included (their fullUrl names them)."""
    assert resp.status == 200 and resp.body is not None, resp.body
    out = []
    for entry in resp.body.get("entry", []):
        kind, oid = entry["fullUrl"].rsplit("/", 2)[-2:]
        out.append((kind, oid))
    return out


async def _owner(demo: Api) -> dict[str, str]:
    """object id -> the patient it belongs to, for every patient-owned record (oracle: master key)."""
    owner: dict[str, str] = {}
    for cls in ("LabResult", "TreatmentPlan", "Message", "Appointment"):
        rows = (await demo.find(cls, master=True, limit=1000)).json()["results"]
        owner.update({r["objectId"]: r["patient"]["objectId"] for r in rows})
    for row in (await demo.find("PatientProfile", master=True, limit=1000)).json()["results"]:
        owner[row["objectId"]] = row["objectId"]
    return owner


async def test_type_and_system_history_stay_in_the_launch_compartment(demo: Api, door: Door) -> None:
    await _join_care_team(demo, "bob:patient", "smith:provider")
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    owner = await _owner(demo)
    token = await user_token(door, "smith", "launch/patient patient/*.rs", patient=alice)

    typed = _versions(await call(door, token, "GET", "Observation/_history?_count=1000"))
    labs = await _labs_by_patient(demo)
    assert {oid for _, oid in typed} == {r["objectId"] for r in labs[alice]}
    every = _versions(await _system_history(door, token))
    assert every and all(kind == "Practitioner" or owner.get(oid) == alice for kind, oid in every)
    assert {oid for _, oid in every} >= {alice}

    # the provider's own rules reach Bob's versions (so the confinement above is the token's)
    wide = await user_token(door, "smith", "user/*.rs")
    assert bob in {owner.get(oid) for _, oid in _versions(await _system_history(door, wide))}


async def test_history_needs_the_search_permission(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    read_only = await user_token(door, "alice", "launch/patient patient/Observation.r", patient=alice)
    resp = await call(door, read_only, "GET", "Observation/_history")
    assert resp.status == 403 and "patient/Observation.s" in diagnostics(resp)
    # system history leaves out the types the token may not search: nothing here
    assert _versions(await _system_history(door, read_only)) == []
    # instance history of one's own record needs only read
    own = next(r["objectId"] for r in (await _labs_by_patient(demo))[alice] if r["status"] == "final")
    assert (await call(door, read_only, "GET", f"Observation/{own}/_history")).status == 200


async def test_history_obeys_query_restrictions(demo: Api, door: Door) -> None:
    """Dr. Smith (Alice's care team only) with a status=final restriction: only currently-final results."""
    labs = (await _labs_by_patient(demo))[demo.ids["alice:patient"]]
    final = {r["objectId"] for r in labs if r["status"] == "final"}
    token = await user_token(door, "smith", "user/Observation.rs?status=final")
    seen = {oid for _, oid in _versions(await call(door, token, "GET", "Observation/_history?_count=1000"))}
    assert seen == final
