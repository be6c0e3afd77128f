"""Helpers for the FHIR door tests: credentials, requests and R4B validation of every read shape."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from tests.api_support import APP_ID, MASTER_KEY, Api

FHIR_JSON = "application/fhir+json"


def bearer(demo: Api, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.tokens[who]}"}


def master_headers() -> dict[str, str]:
    return {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}


def valid(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a resource (and every entry of a Bundle) with fhir.resources R4B; returns ``body``."""
    get_fhir_model_class(body["resourceType"]).model_validate(body)
    for entry in body.get("entry") or []:
        if "resource" in entry:
            get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    return body


async def fget(demo: Api, path: str, who: str | None = None, **params: Any) -> Any:
    headers = bearer(demo, who) if who and who != "master" else (master_headers() if who == "master" else {})
    return await demo.client.get(path, headers=headers, params=params or None)


async def search(demo: Api, path: str, who: str, **params: Any) -> dict[str, Any]:
    r = await fget(demo, path, who, **params)
    assert r.status_code == 200, r.text
    return valid(r.json())


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((item["url"] for item in bundle.get("link", []) if item["relation"] == relation), None)


async def lab(demo: Api, who: str = "smith", *, patient: str | None = None, **fields: Any) -> str:
    """A LabResult created through the native door (the other door writes the same rows)."""
    body = {
        "patient": {
            "__type": "Pointer",
            "className": "PatientProfile",
            "objectId": patient or demo.ids["alice:patient"],
        },
        "testCode": "2345-7",
        "codeSystem": "LN",
        "testName": "Glucose",
        "resultValue": "101",
        "valueType": "NM",
        "units": "mg/dL",
        "status": "preliminary",
        **fields,
    }
    r = await demo.post("/parse/classes/LabResult", body, who)
    assert r.status_code == 201, r.text
    return str(r.json()["objectId"])
