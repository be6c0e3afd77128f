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


async def test_fhirclient_creates_reads_updates_and_pages(live: tuple[str, dict[str, str]]) -> None:
    """Issue #3's client check: fhirclient's own models create an Observation, read it back, update it
    (the server's version moves on) and page through a search by following our ``next`` links."""
    base, users = live
    backend = fhir_client.FHIRClient(
        settings={
            "app_id": "backend",
            "api_base": base + "/fhir",
            "scope": "system/Observation.cruds system/Patient.rs",
            "jwt_token": assertion(aud=base + "/oauth/token"),
        }
    )
    backend.wants_patient = False
    await asyncio.to_thread(backend.prepare)
    await asyncio.to_thread(backend.server.authorize)
    alice = users["patient:DEMO-0001"]
    obs = Observation(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
            "subject": {"reference": f"Patient/{alice}"},
            "effectiveDateTime": "2026-11-20T08:30:00Z",
            "valueQuantity": {"value": 96, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
        }
    )
    created = await asyncio.to_thread(obs.create, backend.server)
    assert created is not None and created.get("id"), created
    new_id = created["id"]
    read = await asyncio.to_thread(Observation.read, new_id, backend.server)
    assert read.valueQuantity.value == 96 and read.subject.reference.endswith(f"Patient/{alice}")
    assert read.meta.versionId == "1"
    read.valueQuantity.value = 97
    read.status = "amended"
    await asyncio.to_thread(read.update, backend.server)
    again = await asyncio.to_thread(Observation.read, new_id, backend.server)
    assert again.valueQuantity.value == 97 and again.status == "amended" and again.meta.versionId == "2"
    everything = await asyncio.to_thread(
        lambda: Observation.where({"patient": alice, "_count": "2"}).perform_resources(backend.server)
    )
    ids = [o.id for o in everything]
    assert new_id in ids and len(ids) == len(set(ids)) and len(ids) > 2  # more than one page, no repeats
