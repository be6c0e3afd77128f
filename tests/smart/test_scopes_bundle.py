"""Scopes on Bundle entries (catalog A07; issue #5 "Enforced on ... transaction entry"): every entry
is authorized exactly as the same request on its own URL; a transaction with any entry the token
may not make fails whole and commits nothing; a batch answers per entry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from gateway.fhir import router
from gateway.fhir.context import FhirRequest, FhirResponse
from gateway.policy.principal import Principal
from tests.api_support import Api
from tests.smart.scopes_support import Door, open_door, user_token
from tests.smart.test_scopes_policy import _join_care_team, _labs_by_patient, _observation


@pytest.fixture
async def door(demo: Api) -> AsyncIterator[Door]:
    async with open_door(demo) as opened:
        yield opened


async def _bundle(door: Door, principal: Principal, kind: str, entries: list[dict[str, Any]]) -> FhirResponse:
    body = msgspec.json.encode({"resourceType": "Bundle", "type": kind, "entry": entries})
    req = FhirRequest("POST", principal, [], {"content-type": "application/fhir+json"}, body)
    return await router.handle_system(door.ctx, "bundle", req)


def _create(patient: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": _observation(patient),
        "request": {"method": "POST", "url": "Observation"},
    }


def _statuses(resp: FhirResponse) -> list[str]:
    assert resp.status == 200 and resp.body is not None, resp.body
    return [e["response"]["status"].split()[0] for e in resp.body["entry"]]


async def _counts(demo: Api) -> dict[str, int]:
    return {k: len(v) for k, v in (await _labs_by_patient(demo)).items()}


async def test_transaction_with_a_foreign_entry_fails_whole(demo: Api, door: Door) -> None:
    await _join_care_team(demo, "bob:patient", "smith:provider")
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    token = await user_token(door, "smith", "launch/patient patient/*.cruds", patient=alice)
    before = await _counts(demo)
    bob_lab = (await _labs_by_patient(demo))[bob][0]["objectId"]
    for foreign in (
        _create(bob),  # a new record in Bob's compartment
        {"request": {"method": "DELETE", "url": f"Observation/{bob_lab}"}},
        {"request": {"method": "GET", "url": f"Patient/{bob}"}},
    ):
        resp = await _bundle(door, token, "transaction", [_create(alice), foreign])
        assert resp.status in (403, 404, 422), resp.body
        assert resp.body is not None and resp.body["resourceType"] == "OperationOutcome"
        assert await _counts(demo) == before, foreign
    assert (await demo.get(f"/parse/classes/LabResult/{bob_lab}", master=True)).status_code == 200

    ok = await _bundle(door, token, "transaction", [_create(alice)])
    assert _statuses(ok) == ["201"]


async def test_transaction_entry_without_scope_is_403_and_commits_nothing(demo: Api, door: Door) -> None:
    alice = demo.ids["alice:patient"]
    token = await user_token(door, "alice", "launch/patient patient/Observation.rs", patient=alice)
    provider = await user_token(door, "smith", "user/Observation.cruds")
    before = await _counts(demo)
    resp = await _bundle(
        door,
        provider,
        "transaction",
        [_create(alice), {"request": {"method": "GET", "url": f"Patient/{alice}"}}],
    )
    assert resp.status == 403 and resp.body is not None
    assert "user/Patient.r" in resp.body["issue"][0]["diagnostics"]
    assert await _counts(demo) == before
    # a read-only token cannot write through a Bundle either
    resp = await _bundle(door, token, "transaction", [_create(alice)])
    assert resp.status == 403 and resp.body is not None
    assert "patient/Observation.c" in resp.body["issue"][0]["diagnostics"]
    assert await _counts(demo) == before


async def test_batch_answers_each_entry_as_on_its_own(demo: Api, door: Door) -> None:
    await _join_care_team(demo, "bob:patient", "smith:provider")
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    labs = await _labs_by_patient(demo)
    token = await user_token(door, "smith", "launch/patient patient/Observation.cruds", patient=alice)
    before = await _counts(demo)
    resp = await _bundle(
        door,
        token,
        "batch",
        [
            {"request": {"method": "GET", "url": f"Observation/{labs[alice][0]['objectId']}"}},
            {"request": {"method": "GET", "url": f"Observation/{labs[bob][0]['objectId']}"}},
            {"request": {"method": "GET", "url": f"Patient/{alice}"}},
            {"request": {"method": "GET", "url": f"Observation?patient={bob}"}},
            _create(alice),
            _create(bob),
        ],
    )
    statuses = _statuses(resp)
    assert statuses[:3] == ["200", "404", "403"]
    assert statuses[3] == "200"
    assert resp.body is not None
    assert not resp.body["entry"][3]["resource"].get("entry")  # Bob's Observations: none
    assert statuses[4] == "201" and statuses[5] in ("403", "404", "422")
    after = await _counts(demo)
    assert after[alice] == before[alice] + 1 and after[bob] == before[bob]


async def test_batch_history_entry_is_history_not_a_read(demo: Api, door: Door) -> None:
    """``GET Observation/_history`` inside a Bundle is type history (a literal segment, not an id),
    under the entry's own scopes."""
    alice = demo.ids["alice:patient"]
    labs = await _labs_by_patient(demo)
    token = await user_token(door, "alice", "launch/patient patient/Observation.rs", patient=alice)
    resp = await _bundle(
        door, token, "batch", [{"request": {"method": "GET", "url": "Observation/_history?_count=1000"}}]
    )
    assert _statuses(resp) == ["200"]
    assert resp.body is not None
    history = resp.body["entry"][0]["resource"]
    assert history["type"] == "history"
    shown = {e["fullUrl"].rsplit("/", 1)[1] for e in history.get("entry", [])}
    assert shown and shown <= {r["objectId"] for r in labs[alice]}
    read_only = await user_token(door, "alice", "launch/patient patient/Observation.r", patient=alice)
    resp = await _bundle(door, read_only, "batch", [{"request": {"method": "GET", "url": "Observation/_history"}}])
    assert _statuses(resp) == ["403"]
