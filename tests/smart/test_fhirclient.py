"""The SMART Python client (``fhirclient``) against a live server: a standalone patient launch that
reads the patient's Observations, and a backend-services client with a signed assertion."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from fhirclient import client as fhir_client
from fhirclient.models.observation import Observation

from tests.smart.live import live
from tests.smart.support import APP_REDIRECT, assertion, form_fields, query_of

__all__ = ["live"]


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
