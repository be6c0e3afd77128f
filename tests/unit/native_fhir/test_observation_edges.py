"""LabResult edge cases the golden files do not pin: fallbacks and inferred types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mappings.native_fhir import REGISTRY, MappingOptions
from mappings.native_fhir.observation import to_fhir
from mappings.native_fhir.observation_in import from_fhir

from .validate import validate_fhir_resources, validate_fhirclient

BASE: dict[str, Any] = {
    "objectId": "lEdge00001",
    "version": 1,
    "updatedAt": datetime(2024, 3, 1, 12, tzinfo=UTC),
    "patient": "pA1b2C3d4E",
    "testCode": "X1",
    "codeSystem": "LN",
    "testName": "Test",
    "status": "final",
}


def _map(**fields: Any) -> dict[str, Any]:
    resource = to_fhir({**BASE, **fields})
    validate_fhir_resources(resource)
    validate_fhirclient(resource)
    return resource


def test_sn_given_only_as_text_is_parsed() -> None:
    assert _map(valueType="SN", resultValue="<0.5", units="ng/mL")["valueQuantity"]["comparator"] == "<"
    assert _map(valueType="SN", resultValue="2-4")["valueRange"]["high"] == {"value": 4}
    assert _map(valueType="SN", resultValue="1:64")["valueRatio"]["denominator"] == {"value": 64}


def test_non_numeric_nm_falls_back_to_string_without_type_extension() -> None:
    resource = _map(valueType="NM", resultValue="see note")
    assert resource["valueString"] == "see note"
    assert "extension" not in resource
    assert from_fhir(resource)["valueType"] == "ST"


def test_unknown_interpretation_is_text_only_and_not_writable_back() -> None:
    resource = _map(valueType="ST", resultValue="x", interpretation="ZZ")
    assert resource["interpretation"] == [{"text": "ZZ"}]


def test_units_system_other_than_ucum_omits_code() -> None:
    quantity = _map(valueType="NM", resultValue="5", units="mg/dL", resultData={"unitsSystem": "ISO+"})
    assert quantity["valueQuantity"] == {"value": 5, "unit": "mg/dL"}


def test_local_code_system_round_trips_through_its_uri() -> None:
    options = MappingOptions(system_base="https://fhir.example.net/")
    resource = to_fhir({**BASE, "codeSystem": "MY LAB"}, options)
    assert resource["code"]["coding"][0]["system"] == "https://fhir.example.net/CodeSystem/v2-MY%20LAB"
    assert from_fhir(resource, options)["codeSystem"] == "MY LAB"


def test_inferred_types_without_extension() -> None:
    resource = _map(valueType="TS", resultValue="2024-03-01", resultData={"dateTime": "2024-03-01"})
    resource.pop("extension")
    assert from_fhir(resource)["valueType"] == "DT"
    resource = _map(valueType="CE", resultValue="Pos", resultData={"code": "10828004", "system": "SCT"})
    resource.pop("extension")
    assert from_fhir(resource)["valueType"] == "CWE"


def test_absolute_reference_under_base_url_is_accepted() -> None:
    options = MappingOptions(base_url="https://portal.example.org/fhir")
    resource = _map(valueType="ST", resultValue="x")
    resource["subject"] = {"reference": "https://portal.example.org/fhir/Patient/pA1b2C3d4E"}
    assert from_fhir(resource, options)["patient"] == "pA1b2C3d4E"


def test_registry_lists_every_resource_once() -> None:
    assert sorted(REGISTRY) == [
        "Appointment", "AuditEvent", "CarePlan", "Communication", "Observation", "Patient", "Practitioner",
    ]  # fmt: skip
    assert [m.native_class for m in REGISTRY.values() if m.from_fhir is None] == ["AuditLog"]
