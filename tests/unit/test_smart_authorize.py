"""``gateway.policy.smart.authorize``: which context answers, what it confines, what it refuses."""

from __future__ import annotations

import pytest

from gateway.policy.principal import Principal, PrincipalKind, Role
from gateway.policy.scopes import Interaction, Restriction, ScopeContext, parse_scopes
from gateway.policy.smart import ScopeDenied, authorize

PATIENT_USER = Principal(
    kind=PrincipalKind.USER, user_id="u1", roles=frozenset({Role.PATIENT.value}), own_patient_id="P1"
)
PROVIDER = Principal(
    kind=PrincipalKind.USER,
    user_id="d1",
    roles=frozenset({Role.PROVIDER.value, "careTeam_P1", "careTeam_P2"}),
)
ADMIN = Principal(kind=PrincipalKind.USER, user_id="a1", roles=frozenset({Role.ADMIN.value}))


def _with(p: Principal, scopes: str, patient: str | None = None) -> Principal:
    from dataclasses import replace

    return replace(p, scopes=parse_scopes(scopes), patient_context=patient)


def test_unscoped_principals_pass_unchanged() -> None:
    hl7 = Principal(kind=PrincipalKind.SYSTEM, name="hl7:LAB1")
    for p in (PATIENT_USER, PROVIDER, ADMIN, hl7):
        got = authorize(p, "Observation", Interaction.DELETE)
        assert got.principal is p and got.context is None and got.restrictions is None
    assert hl7.is_master and hl7.patient_ids is None  # HL7 feeds keep their master-like record rules


@pytest.mark.parametrize(
    ("principal", "patient", "expected_ids"),
    [
        (PATIENT_USER, None, {"P1"}),  # a patient user's own patient is the compartment
        (PATIENT_USER, "P1", {"P1"}),
        (PATIENT_USER, "P2", set()),  # a launch patient that is not theirs reaches nothing
        (PROVIDER, "P1", {"P1"}),  # the provider could see P2 too
        (ADMIN, "P2", {"P2"}),  # the admin could see everyone
    ],
)
def test_patient_grants_confine_to_one_compartment(
    principal: Principal, patient: str | None, expected_ids: set[str]
) -> None:
    got = authorize(_with(principal, "patient/*.rs", patient), "Observation", Interaction.SEARCH_TYPE)
    assert got.context is ScopeContext.PATIENT
    assert got.principal.patient_ids == frozenset(expected_ids)
    assert got.principal.compartment == (patient or "P1")


def test_user_grant_keeps_the_users_rules_and_wins_over_patient() -> None:
    p = _with(PROVIDER, "patient/*.rs user/Observation.rs", "P1")
    got = authorize(p, "Observation", Interaction.READ)
    assert got.context is ScopeContext.USER and got.principal.patient_ids == {"P1", "P2"}
    got = authorize(p, "Patient", Interaction.READ)
    assert got.context is ScopeContext.PATIENT and got.principal.patient_ids == {"P1"}


def test_widest_unrestricted_grant_applies() -> None:
    p = _with(PROVIDER, "user/Observation.rs?category=laboratory patient/Observation.rs", "P1")
    got = authorize(p, "Observation", Interaction.SEARCH_TYPE)
    assert got.context is ScopeContext.PATIENT and got.restrictions is None
    q = _with(PROVIDER, "user/Observation.rs?category=laboratory patient/Observation.rs?status=final", "P1")
    got = authorize(q, "Observation", Interaction.SEARCH_TYPE)
    assert got.context is ScopeContext.USER
    assert got.restrictions == (Restriction((("category", "laboratory"),)),)


@pytest.mark.parametrize(
    ("principal", "scopes", "rtype", "interaction", "named"),
    [
        (PATIENT_USER, "patient/Observation.rs", "Patient", Interaction.READ, "patient/Patient.r"),
        (PATIENT_USER, "system/*.cruds", "Observation", Interaction.READ, "system/Observation.r"),
        (PROVIDER, "patient/*.rs", "Observation", Interaction.READ, "launch/patient"),
        (PROVIDER, "patient/*.cruds", "Patient", Interaction.CREATE, "user/Patient.c"),
    ],
)
def test_refusals_name_a_scope(
    principal: Principal, scopes: str, rtype: str, interaction: Interaction, named: str
) -> None:
    patient = "P1" if "patient/Patient" in scopes or scopes == "patient/*.cruds" else None
    with pytest.raises(ScopeDenied) as err:
        authorize(_with(principal, scopes, patient), rtype, interaction)
    assert err.value.scope == named


def test_restricted_write_grants_carry_their_restrictions() -> None:
    """The door judges a restricted write against the stored resource; policy hands it the restriction."""
    got = authorize(_with(PROVIDER, "user/Observation.cruds?status=final"), "Observation", Interaction.UPDATE)
    assert got.context is ScopeContext.USER and got.restrictions == (Restriction((("status", "final"),)),)
    with pytest.raises(ScopeDenied) as err:
        authorize(_with(PROVIDER, "user/Observation.rs?status=final"), "Observation", Interaction.UPDATE)
    assert err.value.scope == "user/Observation.u"


def test_system_principals_honour_only_system_scopes() -> None:
    client = Principal(kind=PrincipalKind.SYSTEM, name="client:lab", scopes=parse_scopes("system/Observation.rs"))
    assert authorize(client, "Observation", Interaction.READ).context is ScopeContext.SYSTEM
    for rtype, interaction in (("Observation", Interaction.CREATE), ("Patient", Interaction.READ)):
        with pytest.raises(ScopeDenied):
            authorize(client, rtype, interaction)
    user_scoped = Principal(kind=PrincipalKind.SYSTEM, name="client:x", scopes=parse_scopes("user/*.cruds"))
    with pytest.raises(ScopeDenied):
        authorize(user_scoped, "Observation", Interaction.READ)
