"""``POST /fhir`` batch and transaction Bundles, type/system history, and the write races (If-Match,
If-None-Exist) — through real HTTP, or through the router on the test's own loop for the races."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.api_support import Api
from tests.fhir.support import FHIR_JSON, bearer, fget, ids, link, master_headers, search, valid

LOINC = "http://loinc.org"


def _obs(subject: str, code: str = "2345-7", value: float = 99) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": "Glucose"}], "text": "Glucose"},
        "subject": {"reference": subject},
        "effectiveDateTime": "2026-02-03T04:05:06Z",
        "valueQuantity": {"value": value, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    }


def _patient(mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "https://portal-gateway.example.org/fhir/sid/mrn", "value": mrn}],
        "name": [{"family": "Tx", "given": ["Tina"]}],
        "gender": "female",
    }


async def _post(demo: Api, who: str, bundle: dict[str, Any]) -> Any:
    creds = master_headers() if who == "master" else bearer(demo, who)
    headers = {**creds, "Content-Type": FHIR_JSON}
    return await demo.client.post("/fhir", content=json.dumps(bundle).encode(), headers=headers)


async def _count(demo: Api, path: str, **params: str) -> int:
    return int((await search(demo, path, "admin", _summary="count", **params))["total"])


async def test_transaction_creates_with_urn_references(demo: Api) -> None:
    pid = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": _obs(pid),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"fullUrl": pid, "resource": _patient("TX-0001"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient?identifier=TX-0001"}},
        ],
    }
    r = await _post(demo, "master", bundle)
    assert r.status_code == 200, r.text
    out = valid(r.json())
    assert out["type"] == "transaction-response" and len(out["entry"]) == 3
    obs, patient, found = out["entry"]
    assert patient["response"]["status"] == "201 Created" and obs["response"]["status"] == "201 Created"
    patient_id = patient["resource"]["id"]
    assert obs["resource"]["subject"]["reference"] == f"Patient/{patient_id}", "urn:uuid resolved"
    assert obs["response"]["location"].startswith(f"http://testserver.local/fhir/Observation/{obs['resource']['id']}")
    assert obs["response"]["etag"] == 'W/"1"' and obs["response"]["lastModified"].endswith("Z")
    assert [e["resource"]["id"] for e in found["resource"]["entry"]] == [patient_id]
    read = await fget(demo, f"/fhir/Observation/{obs['resource']['id']}", "master")
    assert read.status_code == 200


async def test_transaction_with_one_bad_entry_stores_nothing(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    before_obs = await _count(demo, "/fhir/Observation")
    before_pat = await _count(demo, "/fhir/Patient")
    pid = f"urn:uuid:{uuid.uuid4()}"
    bad = _obs(f"Patient/{alice}")
    bad["status"] = "nope"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": pid, "resource": _patient("TX-0002"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": _obs(pid), "request": {"method": "POST", "url": "Observation"}},
            {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    r = await _post(demo, "master", bundle)
    assert r.status_code in (400, 422), r.text
    issue = valid(r.json())["issue"][0]
    assert issue["expression"][0].startswith("Bundle.entry[2]"), issue
    assert await _count(demo, "/fhir/Observation") == before_obs
    assert await _count(demo, "/fhir/Patient") == before_pat
    assert ids(await search(demo, "/fhir/Patient", "admin", identifier="TX-0002")) == []


async def test_transaction_respects_policy_and_rolls_back(demo: Api) -> None:
    """smith may write alice's results but not bob's: the whole transaction fails, nothing stays."""
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    before = await _count(demo, "/fhir/Observation")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _obs(f"Patient/{alice}"), "request": {"method": "POST", "url": "Observation"}},
            {"resource": _obs(f"Patient/{bob}"), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    r = await _post(demo, "smith", bundle)
    assert r.status_code >= 400 and r.status_code != 500, r.text
    assert valid(r.json())["issue"][0]["expression"][0].startswith("Bundle.entry[1]")
    assert await _count(demo, "/fhir/Observation") == before


async def test_transaction_update_delete_and_if_match(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    created = await demo.client.post(
        "/fhir/Observation",
        content=json.dumps(_obs(f"Patient/{alice}")).encode(),
        headers={**bearer(demo, "smith"), "Content-Type": FHIR_JSON},
    )
    oid = created.json()["id"]
    other = await demo.client.post(
        "/fhir/Observation",
        content=json.dumps(_obs(f"Patient/{alice}")).encode(),
        headers={**bearer(demo, "smith"), "Content-Type": FHIR_JSON},
    )
    doomed = other.json()["id"]
    changed = {**_obs(f"Patient/{alice}", value=120), "id": oid}
    stale = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": f"Observation/{doomed}"}},
            {"resource": changed, "request": {"method": "PUT", "url": f"Observation/{oid}", "ifMatch": 'W/"7"'}},
        ],
    }
    r = await _post(demo, "smith", stale)
    assert r.status_code == 412, r.text
    assert (await fget(demo, f"/fhir/Observation/{doomed}", "smith")).status_code == 200, "the delete was rolled back"
    stale["entry"][1]["request"]["ifMatch"] = 'W/"1"'
    r = await _post(demo, "smith", stale)
    assert r.status_code == 200, r.text
    deleted, updated = r.json()["entry"]
    assert deleted["response"]["status"] == "204 No Content"
    assert updated["response"]["status"] == "200 OK" and updated["response"]["etag"] == 'W/"2"'
    assert (await fget(demo, f"/fhir/Observation/{doomed}", "smith")).status_code == 410
    assert (await fget(demo, f"/fhir/Observation/{oid}", "smith")).json()["valueQuantity"]["value"] == 120


async def test_transaction_conditional_create(demo: Api) -> None:
    pid = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": pid,
                "resource": _patient("TX-0003"),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=TX-0003"},
            },
            {"resource": _obs(pid), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    first = await _post(demo, "master", bundle)
    assert first.status_code == 200, first.text
    assert first.json()["entry"][0]["response"]["status"] == "201 Created"
    patient_id = first.json()["entry"][0]["resource"]["id"]
    again = await _post(demo, "master", bundle)
    assert again.status_code == 200, again.text
    matched, obs = again.json()["entry"]
    assert matched["response"]["status"] == "200 OK" and matched["resource"]["id"] == patient_id
    assert obs["resource"]["subject"]["reference"] == f"Patient/{patient_id}", "urn resolves to the existing one"
    assert ids(await search(demo, "/fhir/Patient", "admin", identifier="TX-0003")) == [patient_id]


async def test_batch_entries_are_independent(demo: Api) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": _obs(f"Patient/{alice}"), "request": {"method": "POST", "url": "Observation"}},
            {"resource": _obs(f"Patient/{bob}"), "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": f"Patient/{alice}"}},
            {"request": {"method": "GET", "url": f"Patient/{bob}"}},
            {"request": {"method": "PATCH", "url": f"Patient/{bob}"}},
            {"request": {"method": "GET", "url": "Nothing/1"}},
        ],
    }
    r = await _post(demo, "smith", bundle)
    assert r.status_code == 200, r.text
    out = valid(r.json())
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"].split()[0] for e in out["entry"]]
    assert statuses[0] == "201" and statuses[2] == "200" and statuses[3] == "404", statuses
    assert statuses[1] in ("403", "404", "422") and statuses[4] == "400" and statuses[5] == "404", statuses
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    created = out["entry"][0]["resource"]["id"]
    assert (await fget(demo, f"/fhir/Observation/{created}", "smith")).status_code == 200


async def test_bad_bundles(demo: Api) -> None:
    for body in (
        {"resourceType": "Patient"},
        {"resourceType": "Bundle", "type": "collection"},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "POST"}}]},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "PUT", "url": "Patient"}}]},
        {"resourceType": "Bundle", "type": "transaction", "entry": "x"},
    ):
        r = await _post(demo, "master", body)
        assert r.status_code == 400, (body, r.text)
        assert valid(r.json())["resourceType"] == "OperationOutcome"
    r = await demo.client.post("/fhir", content=b"{nope", headers={**bearer(demo, "smith"), "Content-Type": FHIR_JSON})
    assert r.status_code == 400
    r = await demo.client.post("/fhir", content=b"{}", headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 401
    r = await demo.client.post(
        "/fhir", content=b"<Bundle/>", headers={**bearer(demo, "smith"), "Content-Type": "application/xml"}
    )
    assert r.status_code == 415


async def test_type_and_system_history(demo: Api) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    page = await search(demo, "/fhir/Observation/_history", "alice", _count="5")
    assert page["type"] == "history" and len(page["entry"]) == 5
    seen: list[str] = []
    bundle = page
    while True:
        for entry in bundle["entry"]:
            if "resource" in entry:
                assert entry["resource"]["subject"]["reference"] == f"Patient/{alice}"
                assert entry["resource"]["status"] in ("final", "corrected", "amended")
            seen.append(entry["fullUrl"] + entry["response"]["etag"])
        nxt = link(bundle, "next")
        if nxt is None:
            break
        parts = urlsplit(nxt)
        bundle = await search(demo, parts.path, "alice", **dict(parse_qsl(parts.query)))
    assert len(seen) == len(set(seen)) > 5
    everything = await search(demo, "/fhir/_history", "alice", _count="1000")
    kinds = {e["fullUrl"].split("/fhir/")[1].split("/")[0] for e in everything["entry"]}
    assert {"Observation", "Patient"} <= kinds and "AuditEvent" not in kinds
    for entry in everything["entry"]:
        if entry["fullUrl"].split("/fhir/")[1].startswith("Patient/"):
            assert entry["fullUrl"].endswith(alice), "never bob's Patient versions"
        res = entry.get("resource", {})
        if "subject" in res:
            assert res["subject"]["reference"] == f"Patient/{alice}"
    assert not [e for e in everything["entry"] if bob in e["fullUrl"]]
    admin = await search(demo, "/fhir/_history", "admin", _count="1000")
    assert any(bob in e["fullUrl"] for e in admin["entry"])
    since = await search(demo, "/fhir/Observation/_history", "admin", _since="2999-01-01T00:00:00Z")
    assert "entry" not in since
    assert (await fget(demo, "/fhir/Observation/_history", "admin", _since="ge2020")).status_code == 400
    assert (await fget(demo, "/fhir/AuditEvent/_history", "admin")).status_code == 405
    assert (await fget(demo, "/fhir/_history", None)).status_code == 401


async def test_if_match_race_is_412_not_409(demo: Api) -> None:
    from tests.smart.scopes_support import call, open_door, principal_of

    alice = demo.ids["alice:patient"]
    async with open_door(demo) as door:
        smith = await principal_of(door, "smith")
        made = await call(door, smith, "POST", "Observation", _obs(f"Patient/{alice}"))
        assert made.status == 201 and made.body is not None
        oid = made.body["id"]
        for value in (101, 102, 103):
            body = {**_obs(f"Patient/{alice}", value=value), "id": oid}
            version = (await call(door, smith, "GET", f"Observation/{oid}")).headers["ETag"]
            results = await asyncio.gather(
                *(call(door, smith, "PUT", f"Observation/{oid}", body, {"If-Match": version}) for _ in range(3))
            )
            assert sorted(r.status for r in results) == [200, 412, 412], [(r.status, r.body) for r in results]


async def test_conditional_create_race_creates_one(demo: Api) -> None:
    from tests.smart.scopes_support import call, open_door, principal_of

    async with open_door(demo) as door:
        admin = await principal_of(door, "admin")
        for n in range(3):
            mrn = f"RACE-{n}"
            results = await asyncio.gather(
                *(
                    call(door, admin, "POST", "Patient", _patient(mrn), {"If-None-Exist": f"identifier={mrn}"})
                    for _ in range(4)
                )
            )
            assert sorted(r.status for r in results) == [200, 200, 200, 201], [(r.status, r.body) for r in results]
            assert len({r.body["id"] for r in results if r.body}) == 1


async def test_capability_statement_names_the_system_interactions(demo: Api) -> None:
    rest = (await demo.client.get("/fhir/metadata")).json()["rest"][0]
    assert [i["code"] for i in rest["interaction"]] == ["transaction", "batch", "history-system"]
    by_type = {res["type"]: [i["code"] for i in res["interaction"]] for res in rest["resource"]}
    assert "history-type" in by_type["Observation"] and "history-type" not in by_type["AuditEvent"]


async def test_conditional_create_in_concurrent_transactions_creates_one(demo: Api) -> None:
    from gateway.fhir import router
    from gateway.fhir.context import FhirRequest
    from tests.smart.scopes_support import open_door, principal_of

    async with open_door(demo) as door:
        admin = await principal_of(door, "admin")

        def bundle(mrn: str) -> FhirRequest:
            pid = f"urn:uuid:{uuid.uuid4()}"
            entries = [
                {
                    "fullUrl": pid,
                    "resource": _patient(mrn),
                    "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={mrn}"},
                },
                {"resource": _obs(pid), "request": {"method": "POST", "url": "Observation"}},
            ]
            body = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode()
            return FhirRequest("POST", admin, [], {"content-type": FHIR_JSON}, body)

        results = await asyncio.gather(*(router.handle_system(door.ctx, "bundle", bundle("TXR-1")) for _ in range(3)))
        assert [r.status for r in results] == [200, 200, 200], [r.body for r in results]
        created = [r.body["entry"][0]["response"]["status"] for r in results if r.body]
        assert sorted(created) == ["200 OK", "200 OK", "201 Created"]
        patients = {r.body["entry"][0]["resource"]["id"] for r in results if r.body}
        assert len(patients) == 1
    assert len(ids(await search(demo, "/fhir/Patient", "admin", identifier="TXR-1"))) == 1
    subjects = await search(demo, "/fhir/Observation", "admin", subject=patients.pop(), _count="10")
    assert len(ids(subjects)) == 3


async def test_malformed_entries_are_4xx_with_the_entry_named(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    a, b = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    obs = _obs(f"Patient/{alice}")
    cases: list[tuple[list[Any], str]] = [
        ([["not", "an", "object"]], "Bundle.entry[0]"),
        ([{"request": {"method": "get", "url": "Patient"}}], "Bundle.entry[0].request.method"),
        (
            [{"request": {"method": "GET", "url": "http://elsewhere.example/fhir/Patient"}}],
            "Bundle.entry[0].request.url",
        ),
        ([{"request": {"method": "POST", "url": "Patient"}, "resource": obs}], "Bundle.entry[0]"),
        ([{"request": {"method": "DELETE", "url": "Patient/x"}, "resource": obs}], "Bundle.entry[0].resource"),
        (
            [
                {"fullUrl": a, "resource": obs, "request": {"method": "POST", "url": "Observation"}},
                {"fullUrl": a, "resource": obs, "request": {"method": "POST", "url": "Observation"}},
            ],
            "Bundle.entry[1].fullUrl",
        ),
        (
            [{"fullUrl": "urn:uuid:nope", "resource": obs, "request": {"method": "POST", "url": "Observation"}}],
            "fullUrl",
        ),
        (
            [
                {"fullUrl": a, "resource": _obs(b), "request": {"method": "POST", "url": "Observation"}},
                {"fullUrl": b, "resource": _obs(a), "request": {"method": "POST", "url": "Observation"}},
            ],
            "Bundle.entry[0].resource",
        ),
        ([{"request": {"method": "PUT", "url": "Observation?code=x"}, "resource": obs}], "Bundle.entry[0].request.url"),
    ]
    for entries, where in cases:
        r = await _post(demo, "master", {"resourceType": "Bundle", "type": "transaction", "entry": entries})
        assert 400 <= r.status_code < 500, (where, r.status_code, r.text)
        issue = valid(r.json())["issue"][0]
        assert where in issue.get("expression", [""])[0], (where, issue)
    too_many = [{"request": {"method": "GET", "url": "Patient"}}] * 1001
    r = await _post(demo, "master", {"resourceType": "Bundle", "type": "batch", "entry": too_many})
    assert r.status_code == 413
    batch = await _post(
        demo, "master", {"resourceType": "Bundle", "type": "batch", "entry": [es[0] for es, _ in cases[:5]]}
    )
    assert batch.status_code == 200
    assert [e["response"]["status"][:3] for e in valid(batch.json())["entry"]] == ["400"] * 5


async def test_a06_history_keeps_unpublished_versions_hidden(demo: Api) -> None:
    """Catalog A06: a result preliminary at v1 and final at v2: alice's type and system history show v2 only."""
    from tests.fhir.support import lab

    oid = await lab(demo)
    r = await demo.put(f"/parse/classes/LabResult/{oid}", {"status": "final"}, "smith")
    assert r.status_code == 200, r.text
    for path in ("/fhir/Observation/_history", "/fhir/_history"):
        mine = await search(demo, path, "alice", _count="1000")
        etags = [e["response"]["etag"] for e in mine["entry"] if e["fullUrl"].endswith(f"/Observation/{oid}")]
        assert etags == ['W/"2"'], (path, etags)
        team = await search(demo, path, "smith", _count="1000")
        etags = [e["response"]["etag"] for e in team["entry"] if e["fullUrl"].endswith(f"/Observation/{oid}")]
        assert etags == ['W/"2"', 'W/"1"'], (path, etags)
    jones = await search(demo, "/fhir/Observation/_history", "jones", _count="1000")
    assert not [e for e in jones.get("entry", []) if e["fullUrl"].endswith(f"/Observation/{oid}")]
