"""The SMART Python client (``fhirclient``) completes a standalone patient launch against a live
``portal-gateway serve`` and reads the patient's Observations, and nothing of another patient
(issue #5 "Tests"). The browser part (login and consent pages) is driven over real HTTP with
httpx, as a person's browser would post the forms; everything else is fhirclient's own code:
discovery from the CapabilityStatement, PKCE, the token exchange, the FHIR reads.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirclient import client
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException

from gateway.smart.clients import add_client
from gateway.store.database import Database
from tests.smart.support import form_fields

BIN_DIR = Path(sys.executable).parent
APP_ID = "fhirclient-app-id"
MASTER_KEY = "fhirclient-master-key-" + "0123456789abcdefghijklmnop"
REDIRECT = "https://fhirclient.example/callback"
CLIENT_ID = "fhirclient-app"
PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
START_TIMEOUT = 30.0


def _cli() -> list[str]:
    exe = BIN_DIR / "portal-gateway"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "gateway.cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pg_admin(statement: str) -> None:
    from sqlalchemy import text

    from gateway.store.engine import create_engine

    engine = create_engine(PG_URL)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fhirclient.db'}"
        return
    name = "fhirclient_" + uuid.uuid4().hex[:12]
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _register(url: str) -> None:
    db = Database(url)
    try:
        await add_client(
            db,
            CLIENT_ID,
            redirect_uris=[REDIRECT],
            scope="openid fhirUser launch/patient patient/*.rs",
            client_type="public",
            name="fhirclient test app",
        )
    finally:
        await db.dispose()


@contextmanager
def _live_server(backend: str, tmp_path: Path) -> Iterator[str]:
    """Migrated, demo-seeded store with the app registered; ``portal-gateway serve`` on a free port."""
    with _database(backend, tmp_path) as url:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            GATEWAY_DATABASE_URL=url,
            GATEWAY_MASTER_KEY=MASTER_KEY,
            GATEWAY_APP_ID=APP_ID,
            GATEWAY_MLLP_PORT="0",
            GATEWAY_HTTP_HOST="127.0.0.1",
            GATEWAY_HTTP_PORT=str(port),
            GATEWAY_BASE_URL=f"http://127.0.0.1:{port}",
            GATEWAY_SIGNING_KEY_FILE=str(tmp_path / "var" / "signing-key.pem"),
            GATEWAY_FILES_DIR=str(tmp_path / "var" / "files"),
            GATEWAY_AUDIT_CHECKPOINT_DIR=str(tmp_path / "var" / "audit-checkpoints"),
            GATEWAY_LOG_LEVEL="WARNING",
        )
        for args in (["db", "upgrade", "--database-url", url], ["seed", "--demo", "--database-url", url]):
            done = subprocess.run([*_cli(), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        asyncio.run(_register(url))
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [*_cli(), "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if server.poll() is not None:
                    pytest.fail(f"server exited with {server.returncode}:\n{log.read_text()}")
                try:
                    if httpx.get(f"{base}/health/ready", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server not ready after {START_TIMEOUT}s:\n{log.read_text()}")
                time.sleep(0.1)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def _browser_login_and_consent(authorize_url: str, username: str, password: str) -> str:
    """What a person does in the browser: sign in, allow; returns the redirect URI with the code."""
    with httpx.Client(follow_redirects=False, timeout=10.0) as browser:
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        fields: dict[str, Any] = form_fields(page.text)
        fields.update(username=username, password=password, action="login")
        consent = browser.post(authorize_url.split("?", 1)[0], data=fields)
        assert consent.status_code == 200, consent.text
        fields = form_fields(consent.text)
        fields["grant_scope"] = [unescape(s) for s in re.findall(r'name="grant_scope" value="([^"]*)"', consent.text)]
        fields["decision"] = "allow"
        done = browser.post(authorize_url.split("?", 1)[0], data=fields)
        assert done.status_code in (302, 303), done.text
        location = done.headers["location"]
        assert location.startswith(REDIRECT + "?"), location
        return location


def _master(base: str, path: str, **params: Any) -> Any:
    headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}
    r = httpx.get(f"{base}{path}", headers=headers, params=params, timeout=10.0)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("backend", BACKENDS)
def test_fhirclient_standalone_patient_launch_reads_own_observations(backend: str, tmp_path: Path) -> None:
    with _live_server(backend, tmp_path) as base:
        smart = client.FHIRClient(
            settings={
                "app_id": CLIENT_ID,
                "api_base": f"{base}/fhir",
                "redirect_uri": REDIRECT,
                "scope": "openid fhirUser launch/patient patient/*.rs",
            }
        )
        assert not smart.ready
        authorize_url = smart.authorize_url  # discovery from the CapabilityStatement, PKCE S256
        assert authorize_url.startswith(f"{base}/oauth/authorize?") and "code_challenge_method=S256" in authorize_url
        callback = _browser_login_and_consent(authorize_url, "alice@example.org", "demo-pass-2026")
        smart.handle_callback(callback)  # fhirclient's own token exchange (code + verifier)
        assert smart.ready

        profiles = _master(base, "/parse/classes/PatientProfile")["results"]
        alice = next(p["objectId"] for p in profiles if p["medicalRecordNumber"] == "DEMO-0001")
        bob = next(p["objectId"] for p in profiles if p["medicalRecordNumber"] == "DEMO-0002")
        assert smart.patient_id == alice
        patient = Patient.read(alice, smart.server)
        assert patient.name[0].family == "Example"

        labs = _master(base, "/parse/classes/LabResult", limit=1000)["results"]
        published = {
            r["objectId"]
            for r in labs
            if r["patient"]["objectId"] == alice and r["status"] in ("final", "corrected", "amended")
        }
        found = Observation.where(struct={"patient": alice, "_count": "2"}).perform_resources(smart.server)
        assert {o.id for o in found} == published  # fhirclient follows our next links across pages
        assert all(o.subject.reference.endswith(f"Patient/{alice}") for o in found)

        # and nothing of Bob's: by id (404, the same as a missing id) and by search
        bob_lab = next(r["objectId"] for r in labs if r["patient"]["objectId"] == bob)
        with pytest.raises(FHIRNotFoundException):
            Observation.read(bob_lab, smart.server)
        with pytest.raises(FHIRNotFoundException):
            Patient.read(bob, smart.server)
        assert Observation.where(struct={"patient": bob}).perform_resources(smart.server) == []
