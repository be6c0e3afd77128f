"""Every fixture pair pins one read shape; ``UPDATE_GOLDEN=1`` rewrites the expected files."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from mappings.native_fhir import BY_NATIVE_CLASS, REGISTRY

from .golden import Case, all_cases, dump
from .validate import validate_fhir_resources, validate_fhirclient

CASES = all_cases()
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def produce(case: Case) -> dict[str, object]:
    return BY_NATIVE_CLASS[case.native_class].to_fhir(case.record, user_refs=case.user_refs)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_matches_golden(case: Case) -> None:
    produced = produce(case)
    if UPDATE:
        case.expected_path.write_text(dump(produced))
    assert case.expected_path.exists(), f"run with UPDATE_GOLDEN=1 to create {case.expected_path.name}"
    assert produced == json.loads(case.expected_path.read_text())


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_valid_for_fhir_resources(case: Case) -> None:
    produced = produce(case)
    # Our timestamps already use 'Z', so the validated dump must equal what we produced.
    assert validate_fhir_resources(produced) == produced


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_valid_for_fhirclient(case: Case) -> None:
    produced = produce(case)
    assert validate_fhirclient(produced) == produced


def test_every_resource_has_two_fixtures() -> None:
    counts = Counter(REGISTRY[BY_NATIVE_CLASS[c.native_class].resource_type].resource_type for c in CASES)
    assert set(counts) == set(REGISTRY)
    assert min(counts.values()) >= 2, counts


def test_observation_fixtures_cover_every_value_type_and_range_form() -> None:
    labs = [c.record for c in CASES if c.native_class == "LabResult"]
    assert {r["valueType"] for r in labs} >= {"NM", "SN", "ST", "TX", "FT", "CE", "CWE", "DT", "TS", "ED"}
    sn_forms = {frozenset(r["resultData"]) for r in labs if r["valueType"] == "SN"}
    assert sn_forms >= {frozenset({"comparator", "value"}), frozenset({"low", "high"})}
    ranges = {r["referenceRange"] for r in labs}
    assert ranges >= {"3.5-5.0", "3.5 - 5.0", "4.3 to 6.2", "<200", "<=200", ">60", ">=60", "70_105"}
    assert ranges >= {"-2.0-2.0", "negative"}
