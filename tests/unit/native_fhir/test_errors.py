"""Reverse mappings refuse what they cannot store, naming the element in ``expression``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from mappings.native_fhir import BY_NATIVE_CLASS, REGISTRY, MappingError

from .golden import FIXTURES, load_native

Edit = Callable[[dict[str, Any]], None]


def _fhir(stem: str) -> tuple[dict[str, Any], dict[str, str]]:
    case = load_native(FIXTURES / f"{stem}.native.json")
    resource = BY_NATIVE_CLASS[case.native_class].to_fhir(case.record, user_refs=case.user_refs)
    return copy.deepcopy(resource), case.user_refs


def _set(key: str, value: Any) -> Edit:
    return lambda r: r.__setitem__(key, value)


CASES: list[tuple[str, str, Edit, str]] = [
    # bad codes in required bindings (fhir.resources accepts all of these)
    ("observation-nm-range-dash", "status", _set("status", "nope"), "Observation.status"),
    ("observation-nm-range-dash", "unknown", _set("status", "unknown"), "Observation.status"),
    ("appointment-booked", "status", _set("status", "arrived"), "Appointment.status"),
    ("careplan-active", "status", _set("status", "on-hold"), "CarePlan.status"),
    ("careplan-active", "intent", _set("intent", "order"), "CarePlan.intent"),
    (
        "careplan-active",
        "category",
        _set("category", [{"coding": [{"system": "http://snomed.info/sct", "code": "734163000"}]}]),
        "CarePlan.category",
    ),
    ("communication-read", "status", _set("status", "stopped"), "Communication.status"),
    ("patient-full", "gender", _set("gender", "f"), "Patient.gender"),
    (
        "observation-nm-range-dash",
        "interpretation",
        lambda r: r["interpretation"][0]["coding"][0].__setitem__("code", "ZZ"),
        "Observation.interpretation[0].coding[0].code",
    ),
    # wrong reference types
    ("observation-nm-range-dash", "subject", _set("subject", {"reference": "Group/g1"}), "Observation.subject"),
    (
        "observation-nm-range-dash",
        "performer",
        _set("performer", [{"reference": "Organization/o1"}]),
        "Observation.performer[0]",
    ),
    (
        "patient-full",
        "gp",
        lambda r: r["generalPractitioner"].append({"reference": "Organization/o1"}),
        "Patient.generalPractitioner[2]",
    ),
    ("careplan-active", "author", _set("author", {"reference": "Patient/p1"}), "CarePlan.author"),
    (
        "appointment-booked",
        "actor",
        lambda r: r["participant"].append({"actor": {"reference": "Device/d1"}, "status": "accepted"}),
        "Appointment.participant[3].actor",
    ),
    (
        "communication-read",
        "sender",
        _set("sender", {"reference": "Practitioner/nobody00"}),
        "Communication.sender",
    ),
    # unknown / unsupported elements
    ("observation-nm-range-dash", "bodySite", _set("bodySite", {"text": "arm"}), "Observation.bodySite"),
    ("observation-nm-range-dash", "valueBoolean", _set("valueBoolean", True), "Observation.valueBoolean"),
    ("patient-full", "deceased", _set("deceasedBoolean", False), "Patient.deceasedBoolean"),
    ("practitioner-full", "qualification", _set("qualification", []), "Practitioner.qualification"),
    (
        "patient-full",
        "extension",
        _set("extension", [{"url": "http://example.org/x", "valueString": "y"}]),
        "Patient.extension",
    ),
    ("careplan-active", "tag", lambda r: r["meta"].__setitem__("tag", []), "CarePlan.meta.tag"),
    # values we would not store faithfully
    (
        "observation-nm-range-dash",
        "ucum",
        lambda r: r["valueQuantity"].__setitem__("code", "mg/dL"),
        "Observation.valueQuantity.code",
    ),
    (
        "observation-nm-range-dash",
        "units-system",
        lambda r: r["valueQuantity"].__setitem__("system", "http://example.org/units"),
        "Observation.valueQuantity.system",
    ),
    (
        "observation-nm-range-dash",
        "code-system",
        lambda r: r["code"]["coding"][0].__setitem__("system", "http://example.org/cs"),
        "Observation.code.coding[0].system",
    ),
    (
        "observation-nm-range-dash",
        "partial-date",
        _set("effectiveDateTime", "2024-03-01"),
        "Observation.effectiveDateTime",
    ),
    ("patient-full", "partial-birth", _set("birthDate", "1985"), "Patient.birthDate"),
    (
        "observation-nm-range-dash",
        "type-mismatch",
        lambda r: r.pop("valueQuantity") and r.__setitem__("valueString", "5.4"),
        "Observation.extension",
    ),
    ("patient-full", "two-names", lambda r: r["name"].append({"family": "X"}), "Patient.name[1]"),
    ("patient-full", "no-mrn", _set("identifier", []), "Patient.identifier"),
]


@pytest.mark.parametrize(("stem", "label", "edit", "expression"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_reverse_mapping_error_names_the_element(stem: str, label: str, edit: Edit, expression: str) -> None:
    resource, users = _fhir(stem)
    edit(resource)
    from_fhir = REGISTRY[resource["resourceType"]].from_fhir
    assert from_fhir is not None
    with pytest.raises(MappingError) as caught:
        from_fhir(resource, user_refs=users)
    assert caught.value.expression == expression
    assert caught.value.issues[0].expression == expression


def test_wrong_resource_type_is_refused() -> None:
    resource, _ = _fhir("patient-full")
    from_fhir = REGISTRY["Practitioner"].from_fhir
    assert from_fhir is not None
    with pytest.raises(MappingError) as caught:
        from_fhir(resource)
    assert caught.value.expression == "Practitioner"


def test_audit_event_is_read_only() -> None:
    assert REGISTRY["AuditEvent"].from_fhir is None
