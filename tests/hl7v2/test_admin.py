"""Admin HTTP endpoints for HL7 dead letters (/hl7v2/dead-letters): who may call them, what they show,
re-processing after a fix, and the door's JSON errors; through the real app on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.hl7v2 import ingest as ingest_module
from gateway.hl7v2.apply import Unappliable
from gateway.hl7v2.routes import ER7
from gateway.store.database import Database
from gateway.store.models import AuditLog, table_of
from mappings.hl7v2 import ErrorCode, Hl7Error
from tests.api_support import APP_ID, MASTER_KEY, make_settings
from tests.hl7v2.conftest import register_feed
from tests.hl7v2.support import FIXTURES, msa, wire

Client = AsyncTestClient[Any]
MASTER = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}


@pytest.fixture
async def admin_http(demo_database: tuple[str, dict[str, str]]) -> AsyncIterator[tuple[Client, str, dict[str, str]]]:
    url, users = demo_database
    key = await register_feed(url, "lab-admin")
    app = create_app(make_settings(url))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client, key, {**users, "url": url}


def _session(users: dict[str, str], who: str) -> dict[str, str]:
    return {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": users[f"token:{who}"]}


async def _ingest(client: Client, key: str, body: bytes) -> bytes:
    r = await client.post("/hl7v2", content=body, headers={"Content-Type": ER7, "X-Feed-Key": key})
    return bytes(r.content)


async def test_who_may_call(admin_http: tuple[Client, str, dict[str, str]]) -> None:
    client, _, users = admin_http
    nobody = await client.get("/hl7v2/dead-letters")
    assert nobody.status_code == 401 and nobody.json() == {
        "status_code": 401,
        "detail": "the master key or an admin session token is required",
    }
    assert "WWW-Authenticate" in nobody.headers
    bad_key = await client.get("/hl7v2/dead-letters", headers={**MASTER, "X-Parse-Master-Key": "nope"})
    assert bad_key.status_code == 401
    bad_token = await client.get("/hl7v2/dead-letters", headers={"X-Parse-Session-Token": "r:unknown"})
    assert bad_token.status_code == 401
    for who in ("alice@example.org", "dr.smith@example.org"):
        denied = await client.get("/hl7v2/dead-letters", headers=_session(users, who))
        assert denied.status_code == 403 and denied.json()["status_code"] == 403
        denied = await client.post("/hl7v2/dead-letters/x/reprocess", headers=_session(users, who))
        assert denied.status_code == 403
    admin = await client.get("/hl7v2/dead-letters", headers=_session(users, "admin@example.org"))
    assert admin.status_code == 200 and admin.json() == {"results": []}
    bearer = {"Authorization": f"Bearer {users['token:admin@example.org']}"}
    assert (await client.get("/hl7v2/dead-letters", headers=bearer)).status_code == 200
    assert (await client.get("/hl7v2/dead-letters", headers=MASTER)).status_code == 200


async def test_list_and_show_with_reasons_and_audit(admin_http: tuple[Client, str, dict[str, str]]) -> None:
    client, key, users = admin_http
    ae = await _ingest(client, key, wire(FIXTURES / "malformed-bad-obx2.hl7"))
    ar = await _ingest(client, key, b"not HL7 at all")
    aa = await _ingest(client, key, wire(FIXTURES / "cbc-sunquest.hl7"))
    assert [msa(a)[1] for a in (ae, ar, aa)] == ["AE", "AR", "AA"]
    listing = (await client.get("/hl7v2/dead-letters", headers=MASTER)).json()["results"]
    assert [row["outcome"] for row in listing] == ["AR", "AE"], "newest first, the applied message is not listed"
    assert "message" not in listing[0] and "raw" not in listing[0], "no content in the list"
    first = listing[1]
    assert first["feed"] == "lab-admin" and first["transport"] == "http" and first["controlId"]
    assert first["reasons"] and all(r["code"] and r["message"] for r in first["reasons"])
    assert first["reasons"][0]["location"] == "OBX[1]-2", first["reasons"]
    limited = (await client.get("/hl7v2/dead-letters?limit=1", headers=MASTER)).json()["results"]
    assert [r["id"] for r in limited] == [listing[0]["id"]]
    assert (await client.get("/hl7v2/dead-letters?limit=0", headers=MASTER)).status_code == 400
    assert (await client.get("/hl7v2/dead-letters?limit=many", headers=MASTER)).status_code == 400

    admin = _session(users, "admin@example.org")
    shown = await client.get(f"/hl7v2/dead-letters/{first['id']}", headers=admin)
    assert shown.status_code == 200
    body = shown.json()
    assert body["message"].startswith("MSH|") and "\nOBX|" in body["message"]
    assert body["ack"].startswith("MSH|") and "\nMSA|AE|" in body["ack"]
    db = Database(users["url"])
    try:
        async with db.read() as conn:
            audit = table_of(AuditLog)
            rows = (
                await conn.execute(
                    select(audit.c.action, audit.c.actorName).where(
                        (audit.c.entityType == "Hl7Message") & (audit.c.entityId == first["id"])
                    )
                )
            ).all()
        assert [(r.action, r.actorName) for r in rows] == [("read", "admin@example.org")]
    finally:
        await db.dispose()
    applied_id = msa(aa)[2]  # MSA-2 is the sender's control id, not ours: look it up as a dead letter
    assert (await client.get(f"/hl7v2/dead-letters/{applied_id}", headers=admin)).status_code == 404
    missing = await client.get("/hl7v2/dead-letters/nope", headers=admin)
    assert missing.status_code == 404 and missing.json() == {"status_code": 404, "detail": "no dead letter 'nope'"}


async def test_reprocess_after_a_fix(
    admin_http: tuple[Client, str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, key, _ = admin_http

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise Unappliable([Hl7Error(ErrorCode.APPLICATION_INTERNAL_ERROR, "OBX", 1, 5, "simulated defect")])

    message = wire(FIXTURES / "chem-panel-beaker.hl7")
    with monkeypatch.context() as patch:
        patch.setattr(ingest_module, "apply_results", broken)
        assert msa(await _ingest(client, key, message))[1] == "AE"
    [dead] = (await client.get("/hl7v2/dead-letters", headers=MASTER)).json()["results"]
    assert "simulated defect" in dead["reasons"][0]["message"]
    done = await client.post(f"/hl7v2/dead-letters/{dead['id']}/reprocess", headers=MASTER)
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["outcome"] == "AA" and result["messageId"] != dead["id"] and "\nMSA|AA|" in result["ack"]
    # the sender's resend now gets the applied message's ACK
    assert msa(await _ingest(client, key, message))[1] == "AA"
    [still] = (await client.get("/hl7v2/dead-letters", headers=MASTER)).json()["results"]
    assert still["id"] == dead["id"] and still["effects"]["reprocessedAs"] == result["messageId"]
    gone = await client.post("/hl7v2/dead-letters/nope/reprocess", headers=MASTER)
    assert gone.status_code == 404 and gone.json()["detail"] == "no dead letter 'nope'"
    applied = await client.post(f"/hl7v2/dead-letters/{result['messageId']}/reprocess", headers=MASTER)
    assert applied.status_code == 404, "an applied message is not a dead letter"


def test_openapi_documents_the_routes() -> None:
    from litestar import Litestar

    from gateway.hl7v2.admin import ROUTES

    paths = Litestar(route_handlers=ROUTES).openapi_schema.to_schema()["paths"]
    assert set(paths["/hl7v2/dead-letters"]) == {"get"}
    assert "status_code" in paths["/hl7v2/dead-letters"]["get"]["description"]
    assert set(paths["/hl7v2/dead-letters/{message_id}/reprocess"]) == {"post"}
    assert {"401", "403", "404"} <= set(paths["/hl7v2/dead-letters/{message_id}"]["get"]["responses"])
