"""The SMART Python client (``fhirclient``) against a live server: a standalone patient launch that
reads the patient's Observations, and a backend-services client with a signed assertion."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fhirclient import client as fhir_client
from fhirclient.models.observation import Observation

from gateway.app import create_app
from tests.api_support import make_settings
from tests.smart.conftest import _KEY_FILE, _register
from tests.smart.support import APP_REDIRECT, assertion, form_fields, query_of


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Live:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Live:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
async def live(demo_database: tuple[str, dict[str, str]], tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    url, users = demo_database
    if not url.startswith("sqlite"):
        pytest.skip("one backend is enough for the client interop check")
    await _register(url)
    port = _free_port()
    key = tmp_path / "key.pem"
    shutil.copy(_KEY_FILE, key)
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(url, signing_key_file=str(key)).with_(base_url=base)
    with _Live(create_app(settings), port):
        yield base, users


async def _browser(authorize_url: str) -> str:
    """What a person does in the browser: sign in as Alice and allow; returns the redirect URL."""
    async with httpx.AsyncClient(follow_redirects=False) as web:
        page = await web.get(authorize_url)
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        fields.update(username="alice@example.org", password="demo-pass-2026")
        consent = await web.post(page.url.copy_with(query=None), data=fields)
        assert consent.status_code == 200, consent.text
        fields = dict(form_fields(consent.text))
        data: dict[str, Any] = {**fields, "decision": "allow"}
        data["grant_scope"] = re.findall(r'name="grant_scope" value="([^"]*)"', consent.text)
        done = await web.post(page.url.copy_with(query=None), data=data)
        assert done.status_code == 302, done.text
        return str(done.headers["location"])


async def test_fhirclient_standalone_patient_launch(live: tuple[str, dict[str, str]]) -> None:
    base, users = live
    smart = fhir_client.FHIRClient(
        settings={
            "app_id": "app-public",
            "api_base": base + "/fhir",
            "redirect_uri": APP_REDIRECT,
            "scope": "launch/patient openid fhirUser patient/Observation.rs patient/Patient.rs",
        }
    )
    url = await asyncio.to_thread(lambda: smart.authorize_url)
    assert url.startswith(base + "/oauth/authorize?")
    callback = await _browser(url)
    assert "code" in query_of(callback)
    await asyncio.to_thread(smart.handle_callback, callback)
    alice = users["patient:DEMO-0001"]
    assert smart.patient_id == alice
    bundle = await asyncio.to_thread(lambda: Observation.where({"patient": alice}).perform(smart.server))
    found = [e.resource for e in bundle.entry or []]
    assert found, "Alice's published lab results"
    assert all(o.subject.reference.endswith(f"Patient/{alice}") for o in found)


async def test_fhirclient_backend_services(live: tuple[str, dict[str, str]]) -> None:
    base, _ = live
    backend = fhir_client.FHIRClient(
        settings={
            "app_id": "backend",
            "api_base": base + "/fhir",
            "scope": "system/Observation.rs",
            "jwt_token": assertion(aud=base + "/oauth/token"),
        }
    )
    backend.wants_patient = False  # otherwise fhirclient adds launch/patient, which is no backend scope
    await asyncio.to_thread(backend.prepare)
    await asyncio.to_thread(backend.server.authorize)
    assert backend.server.auth.access_token
    bundle = await asyncio.to_thread(lambda: Observation.where({"_count": "5"}).perform(backend.server))
    assert bundle.entry
