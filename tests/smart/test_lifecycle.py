"""Tokens follow the world they were issued in (catalog A11, B06): deactivation, care-team changes,
online_access, a client with a jwks_url, client removal, and the audit entries of issue and refusal."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from gateway.smart.clients import add_client, remove_client
from gateway.store.database import Database
from gateway.store.models import AuditLog, table_of
from tests.smart.support import Smart, assertion, backend_keys


async def test_deactivated_provider_loses_token_and_refresh(smart: Smart) -> None:
    tok = await smart.tokens_for("smith", scope="openid fhirUser offline_access user/*.rs")
    alice = smart.api.ids["alice:patient"]
    assert (await smart.fhir(f"/fhir/Patient/{alice}", tok["access_token"])).status_code == 200
    r = await smart.api.put(
        f"/parse/classes/ProviderProfile/{smart.api.ids['smith:provider']}", {"isActive": False}, master=True
    )
    assert r.status_code == 200, r.text
    assert (await smart.fhir(f"/fhir/Patient/{alice}", tok["access_token"])).status_code == 401
    refresh = await smart.token(
        {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "client_id": "app-public"}
    )
    assert refresh.status_code == 400


async def test_care_team_removal_applies_on_the_next_request(smart: Smart) -> None:
    tok = await smart.tokens_for("smith", scope="openid fhirUser user/*.rs")
    alice = smart.api.ids["alice:patient"]
    assert (await smart.fhir(f"/fhir/Patient/{alice}", tok["access_token"])).status_code == 200
    r = await smart.api.put(f"/parse/classes/PatientProfile/{alice}", {"careTeam": []}, master=True)
    assert r.status_code == 200, r.text
    assert (await smart.fhir(f"/fhir/Patient/{alice}", tok["access_token"])).status_code == 404


async def test_online_access_gets_a_refresh_token(smart: Smart) -> None:
    tok = await smart.tokens_for("alice", scope="launch/patient online_access patient/Observation.rs")
    assert tok["refresh_token"]
    plain = await smart.tokens_for("alice", scope="launch/patient patient/Observation.rs")
    assert "refresh_token" not in plain


@pytest.fixture
def jwks_server() -> Iterator[str]:
    rsa, _ = backend_keys()
    body = json.dumps({"keys": [rsa.as_dict(private=False, kid="rsa1")]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()


async def test_client_with_a_jwks_url(smart: Smart, jwks_server: str) -> None:
    db = Database(smart.url)
    try:
        await add_client(
            db,
            "ehr-url",
            redirect_uris=[],
            scope="system/*.rs",
            client_type="confidential-asymmetric",
            jwks_url=jwks_server,
        )
    finally:
        await db.dispose()
    r = await smart.backend_token("system/Observation.rs", client_id="ehr-url")
    assert r.status_code == 200, r.text
    assert (await smart.fhir("/fhir/Observation", r.json()["access_token"])).status_code == 200


async def test_removed_client_tokens_stop_working(smart: Smart) -> None:
    tok = (await smart.backend_token()).json()["access_token"]
    assert (await smart.fhir("/fhir/Observation", tok)).status_code == 200
    db = Database(smart.url)
    try:
        assert await remove_client(db, "backend")
    finally:
        await db.dispose()
    assert (await smart.fhir("/fhir/Observation", tok)).status_code == 401
    r = await smart.token(
        {
            "grant_type": "client_credentials",
            "scope": "system/Observation.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(),
        }
    )
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"


async def test_issue_and_refusal_are_audited_with_client_and_user(smart: Smart) -> None:
    await smart.tokens_for("alice")
    await smart.backend_token(exp_in=900)
    db = Database(smart.url)
    try:
        async with db.read() as conn:
            log = table_of(AuditLog)
            rows = (
                await conn.execute(
                    select(log.c.action, log.c.outcome, log.c.clientId, log.c.actor, log.c.patient)
                    .where(log.c.action.like("oauth-%"))
                    .order_by(log.c.seq)
                )
            ).all()
    finally:
        await db.dispose()
    actions = [(r.action, r.outcome, r.clientId) for r in rows]
    assert ("oauth-authorize", "success", "app-public") in actions
    assert ("oauth-token", "success", "app-public") in actions
    assert ("oauth-refused", "failure", "backend") in actions
    issued = next(r for r in rows if r.action == "oauth-token")
    assert issued.actor == smart.api.ids["alice:user"] and issued.patient == smart.api.ids["alice:patient"]
