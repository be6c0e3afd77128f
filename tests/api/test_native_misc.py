"""Batch, schemas, CORS, limits and health: the rest of the native surface (A07, A09, C05)."""

from __future__ import annotations

from typing import Any

from tests.api_support import APP_ID, Api, pointer


async def test_batch_entries_are_authorized_one_by_one(demo: Api) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    r = await demo.post(
        "/parse/batch",
        {
            "requests": [
                {
                    "method": "POST",
                    "path": "/parse/classes/LabResult",
                    "body": {"patient": pointer("PatientProfile", alice), "testCode": "a"},
                },
                {
                    "method": "POST",
                    "path": "/parse/classes/LabResult",
                    "body": {"patient": pointer("PatientProfile", bob), "testCode": "b"},
                },
                {"method": "GET", "path": f"/parse/classes/PatientProfile/{bob}"},
                {"method": "PUT", "path": "/parse/schemas/LabResult", "body": {"classLevelPermissions": {}}},
                {"method": "GET", "path": f"/parse/classes/PatientProfile/{alice}"},
            ]
        },
        "smith",
    )
    assert r.status_code == 200
    out = r.json()
    assert "objectId" in out[0]["success"]
    assert out[1]["error"]["code"] == 101
    assert out[2]["error"]["code"] == 101
    assert "error" in out[3]
    assert out[4]["success"]["objectId"] == alice


async def test_batch_limits_and_nesting(demo: Api) -> None:
    r = await demo.post("/parse/batch", {"requests": [{"method": "GET", "path": "/parse/health"}] * 51}, "alice")
    assert r.status_code == 400 and r.json()["code"] == 107
    r = await demo.post(
        "/parse/batch", {"requests": [{"method": "POST", "path": "/parse/batch", "body": {"requests": []}}]}, "alice"
    )
    assert r.json()[0]["error"]["code"] == 107


async def test_schemas_need_master_key_and_list_fixed_classes(demo: Api) -> None:
    r = await demo.get("/parse/schemas", "admin")
    assert r.status_code == 403 and r.json() == {"error": "unauthorized: master key is required"}
    r = await demo.get("/parse/schemas", master=True)
    names = {s["className"] for s in r.json()["results"]}
    assert {"PatientProfile", "LabResult", "AuditLog", "_User", "_Role", "_Session"} <= names
    lab = (await demo.get("/parse/schemas/LabResult", master=True)).json()
    assert lab["fields"]["patient"] == {"type": "Pointer", "targetClass": "PatientProfile", "required": True}
    r = await demo.post("/parse/schemas/Anything", {}, master=True)
    assert r.status_code == 400 and r.json()["code"] == 119


async def test_clp_change_through_schemas_and_audit_stays_read_only(demo: Api) -> None:
    r = await demo.put("/parse/schemas/AuditLog", {"classLevelPermissions": {"create": {"*": True}}}, master=True)
    assert r.status_code == 200
    r = await demo.post("/parse/classes/AuditLog", {"action": "read"}, "alice")
    assert r.status_code == 400 and r.json()["code"] == 119
    r = await demo.put(
        "/parse/schemas/Message", {"classLevelPermissions": {"create": {"role:admin": True}}}, master=True
    )
    assert r.status_code == 200
    r = await demo.post(
        "/parse/classes/Message",
        {"patient": pointer("PatientProfile", demo.ids["alice:patient"]), "body": "x"},
        "alice",
    )
    assert r.status_code == 400 and r.json() == {
        "code": 119,
        "error": "Permission denied for action create on class Message.",
    }
    r = await demo.put("/parse/schemas/Message", {"classLevelPermissions": {"create": {"*": "yes"}}}, master=True)
    assert r.status_code == 400


async def test_cors_preflight_and_headers(api: Api) -> None:
    r = await api.client.options(
        "/parse/classes/LabResult",
        headers={
            "Origin": "https://portal.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-Parse-Application-Id, X-Parse-Session-Token, Content-Type",
        },
    )
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] in ("*", "https://portal.example")
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "x-parse-session-token" in allowed and "x-parse-application-id" in allowed
    r = await api.client.get(
        "/parse/health", headers={"Origin": "https://portal.example", "X-Parse-Application-Id": APP_ID}
    )
    assert r.headers["access-control-allow-origin"] in ("*", "https://portal.example")


async def test_body_limit_is_a_clean_413(database_url: str) -> None:
    from litestar.testing import AsyncTestClient

    from gateway.app import create_app
    from tests.api_support import make_settings

    app = create_app(make_settings(database_url, max_body_bytes=1024))
    async with AsyncTestClient(app) as client:
        r = await client.post(
            "/parse/users",
            content=b'{"username":"' + b"a" * 2000 + b'"}',
            headers={"X-Parse-Application-Id": APP_ID, "Content-Type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["code"] == 116


async def test_health(api: Api) -> None:
    assert (await api.client.get("/health/live")).json() == {"status": "ok"}
    r = await api.client.get("/health/ready")
    assert r.status_code == 200 and r.json()["checks"] == {"database": True, "migrations": True, "durable": True}
    assert (await api.client.get("/parse/health", headers=api.headers())).json() == {"status": "ok"}


async def test_unknown_route_is_parse_shaped(api: Api) -> None:
    r = await api.client.get("/parse/nothing/here", headers=api.headers())
    assert r.status_code == 404 and "code" in r.json()


async def test_write_path_is_durable(settings: Any) -> None:
    """E01: what we acknowledge survives power loss (WAL + synchronous=FULL; synchronous_commit on PG)."""
    from gateway.store.database import Database

    db = Database(settings.database_url)
    try:
        report = await db.durability()
    finally:
        await db.dispose()
    assert report["durable"] is True
    if settings.database_url.startswith("sqlite"):
        assert report["journal_mode"] == "wal" and report["synchronous"] == "FULL"
