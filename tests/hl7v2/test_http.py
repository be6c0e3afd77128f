"""POST /hl7v2 through the real app (ASGI): feed keys, status codes, batches, and the policy after ingest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.hl7v2.routes import ER7
from tests.api_support import APP_ID, make_settings
from tests.hl7v2.conftest import register_feed
from tests.hl7v2.support import CORPUS, FIXTURES, msa, result_ids, wire

Client = AsyncTestClient[Any]


def _acks(body: bytes) -> list[bytes]:
    return [b"MSH" + part for part in body.split(b"MSH")[1:]]


async def _post(client: Client, body: bytes, key: str | None, *, bearer: bool = False, ctype: str = ER7) -> Any:
    headers = {"Content-Type": ctype}
    if key is not None:
        headers["Authorization" if bearer else "X-Feed-Key"] = f"Bearer {key}" if bearer else key
    return await client.post("/hl7v2", content=body, headers=headers)


async def test_missing_or_wrong_feed_key_is_401(http: tuple[Client, str]) -> None:
    client, key = http
    body = wire(FIXTURES / "cbc-sunquest.hl7")
    assert (await _post(client, body, None)).status_code == 401
    assert (await _post(client, body, key + "x")).status_code == 401
    assert (await _post(client, body, "hl7_" + "A" * 43, bearer=True)).status_code == 401
    r = await client.post("/hl7v2", content=body, headers={"Authorization": f"Basic {key}", "Content-Type": ER7})
    assert r.status_code == 401
    assert (await _post(client, body, key, ctype="application/json")).status_code == 415


async def test_corpus_pair_over_http_then_duplicate(http: tuple[Client, str]) -> None:
    client, key = http
    first = await _post(client, wire(CORPUS / "LAB-ORU-1.hl7"), key)
    second = await _post(client, (CORPUS / "LAB-ORU-2.hl7").read_bytes(), key, bearer=True, ctype="text/plain")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["content-type"].startswith(ER7)
    assert msa(first.content)[1:3] == ["AA", "182"]
    again = await _post(client, (CORPUS / "LAB-ORU-2.hl7").read_bytes(), key)
    assert again.content == second.content


async def test_status_codes_follow_the_ack(http: tuple[Client, str]) -> None:
    client, key = http
    ae = await _post(client, wire(FIXTURES / "malformed-bad-obx2.hl7"), key)
    ar = await _post(client, wire(FIXTURES / "malformed-unknown-version.hl7"), key)
    garbage = await _post(client, b"\x00\x01 nothing like HL7", key)
    empty = await _post(client, b"", key)
    bare_msh = await _post(client, b"MSH\rPID|1", key)  # mappings.decode raises ValueError on this
    assert (bare_msh.status_code, msa(bare_msh.content)[1]) == (400, "AR")
    assert (ae.status_code, msa(ae.content)[1]) == (422, "AE")
    assert (ar.status_code, msa(ar.content)[1]) == (400, "AR")
    assert (garbage.status_code, msa(garbage.content)[1]) == (400, "AR")
    assert (empty.status_code, msa(empty.content)[1]) == (400, "AR")


async def test_batch_gets_one_ack_per_message(http: tuple[Client, str]) -> None:
    client, key = http
    r = await _post(client, (FIXTURES / "batch-fhs-bhs.hl7").read_bytes(), key)
    acks = _acks(r.content)
    assert r.status_code == 200
    assert [msa(a)[1:3] for a in acks] == [["AA", "ES-B-0001"], ["AA", "ES-B-0002"], ["AA", "ES-B-0003"]]


@pytest.fixture
async def demo_http(demo_database: tuple[str, dict[str, str]]) -> AsyncIterator[tuple[Client, str, dict[str, str]]]:
    url, users = demo_database
    key = await register_feed(url, "lab-demo")
    app = create_app(make_settings(url))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client, key, users


ALICE_RESULTS = (
    b"MSH|^~\\&|LABCORE|DEMO LAB|PORTAL|PORTAL GW|20260301090000+0000||ORU^R01^ORU_R01|DEMO-LAB-1|P|2.5.1\r"
    b"PID|1||DEMO-0001^^^DEMO^MR\r"
    b"ORC|RE|PO-1|FO-1||CM\r"
    b"OBR|1|PO-1|FO-1|24331-1^Lipid panel^LN|||20260301080000+0000|||||||||||||||20260301085900+0000|||F\r"
    b"OBX|1|NM|2093-3^Cholesterol^LN||187|mg/dL^^UCUM|<200||||F|||20260301080000+0000\r"
    b"OBX|2|NM|2571-8^Triglyceride^LN||150|mg/dL^^UCUM|<150||||P|||20260301080000+0000\r"
)


async def test_published_result_is_visible_to_the_patient_preliminary_only_to_the_care_team(
    demo_http: tuple[Client, str, dict[str, str]],
) -> None:
    client, key, users = demo_http
    r = await _post(client, ALICE_RESULTS, key)
    assert (r.status_code, msa(r.content)[1]) == (200, "AA"), r.content
    final_id, preliminary_id = result_ids(ALICE_RESULTS)

    async def get(oid: str, who: str) -> Any:
        headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": users[f"token:{who}"]}
        return await client.get(f"/parse/classes/LabResult/{oid}", headers=headers)

    alice_final = await get(final_id, "alice@example.org")
    assert alice_final.status_code == 200, alice_final.text
    body = alice_final.json()
    assert body["status"] == "final" and body["resultValue"] == "187" and body["publishedAt"]
    assert body["patient"]["objectId"] == users["patient:DEMO-0001"]
    assert (await get(preliminary_id, "alice@example.org")).status_code == 404
    assert (await get(preliminary_id, "dr.smith@example.org")).status_code == 200
    assert (await get(final_id, "bob@example.org")).status_code == 404
    assert (await get(final_id, "dr.jones@example.org")).status_code == 404
