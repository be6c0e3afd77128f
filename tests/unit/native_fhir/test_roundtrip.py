"""native -> FHIR -> native loses nothing FHIR can carry (``NOT_CARRIED`` lists the rest)."""

from __future__ import annotations

import pytest

from mappings.native_fhir import BY_NATIVE_CLASS

from .golden import SERVER_MANAGED, Case, all_cases

WRITABLE = [c for c in all_cases() if BY_NATIVE_CLASS[c.native_class].from_fhir is not None]


@pytest.mark.parametrize("case", WRITABLE, ids=[c.stem for c in WRITABLE])
def test_round_trip_keeps_every_carried_field(case: Case) -> None:
    mapping = BY_NATIVE_CLASS[case.native_class]
    assert mapping.from_fhir is not None
    resource = mapping.to_fhir(case.record, user_refs=case.user_refs)
    draft = mapping.from_fhir(resource, user_refs=case.user_refs)
    skip = SERVER_MANAGED | set(mapping.not_carried)
    expected = {k: v for k, v in case.record.items() if k not in skip}
    assert {k: v for k, v in draft.items() if k not in skip} == expected


@pytest.mark.parametrize("case", WRITABLE, ids=[c.stem for c in WRITABLE])
def test_draft_has_no_server_managed_fields(case: Case) -> None:
    mapping = BY_NATIVE_CLASS[case.native_class]
    assert mapping.from_fhir is not None
    draft = mapping.from_fhir(mapping.to_fhir(case.record, user_refs=case.user_refs), user_refs=case.user_refs)
    assert not set(draft) & SERVER_MANAGED
    assert not set(draft) & set(mapping.not_carried) - {"isRead"}


@pytest.mark.parametrize("case", WRITABLE, ids=[c.stem for c in WRITABLE])
def test_fhir_is_stable_after_a_round_trip(case: Case) -> None:
    mapping = BY_NATIVE_CLASS[case.native_class]
    assert mapping.from_fhir is not None
    first = mapping.to_fhir(case.record, user_refs=case.user_refs)
    draft = mapping.from_fhir(first, user_refs=case.user_refs)
    merged = {**case.record, **draft}
    assert mapping.to_fhir(merged, user_refs=case.user_refs) == first
