"""SMART scope grammar (v1, v2, query restrictions) and the questions the FHIR door asks of it."""

from __future__ import annotations

import pytest

from gateway.policy.scopes import (
    Grant,
    Interaction,
    Permission,
    ResourceScope,
    Restriction,
    ScopeContext,
    SmartScopes,
    granted_subset,
    parse_scopes,
)

P = Permission
ALL = frozenset(Permission)
RS = frozenset({P.READ, P.SEARCH})
CUD = frozenset({P.CREATE, P.UPDATE, P.DELETE})
LAB = Restriction((("category", "laboratory"),))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient/Observation.read", ResourceScope(ScopeContext.PATIENT, "Observation", RS, None, True)),
        ("user/*.write", ResourceScope(ScopeContext.USER, "*", CUD, None, True)),
        ("system/*.*", ResourceScope(ScopeContext.SYSTEM, "*", ALL, None, True)),
        ("patient/Observation.rs", ResourceScope(ScopeContext.PATIENT, "Observation", RS)),
        ("user/Appointment.cruds", ResourceScope(ScopeContext.USER, "Appointment", ALL)),
        ("user/Patient.r", ResourceScope(ScopeContext.USER, "Patient", frozenset({P.READ}))),
        ("system/Observation.cu", ResourceScope(ScopeContext.SYSTEM, "Observation", frozenset({P.CREATE, P.UPDATE}))),
        ("patient/Observation.rs?category=laboratory", ResourceScope(ScopeContext.PATIENT, "Observation", RS, LAB)),
        (
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            ResourceScope(
                ScopeContext.PATIENT,
                "Observation",
                RS,
                Restriction((("category", "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"),)),
            ),
        ),
        (
            "user/Observation.s?category=laboratory&status=final",
            ResourceScope(
                ScopeContext.USER,
                "Observation",
                frozenset({P.SEARCH}),
                Restriction((("category", "laboratory"), ("status", "final"))),
            ),
        ),
    ],
)
def test_resource_scopes_parse(text: str, expected: ResourceScope) -> None:
    parsed = parse_scopes(text)
    assert parsed.resource == {expected}
    assert parsed.other == frozenset()
    assert str(expected) == text


def test_non_resource_scopes_are_a_set() -> None:
    text = "openid fhirUser profile launch launch/patient offline_access online_access openid"
    parsed = parse_scopes(text)
    assert parsed.other == set(text.split())
    assert parsed.resource == frozenset()
    assert not parsed.allows("Patient", Interaction.READ)


def test_whitespace_and_order_do_not_matter() -> None:
    a = parse_scopes("  launch/patient\tpatient/Observation.rs  openid ")
    b = parse_scopes("openid patient/Observation.rs launch/patient")
    assert a == b
    assert parse_scopes("") == SmartScopes()


@pytest.mark.parametrize(
    "bad",
    [
        "patient/Observation",  # no permissions
        "patient/Observation.",  # empty permissions
        "patient/Observation.rc",  # out of order
        "patient/Observation.rrs",  # repeated letter
        "patient/Observation.x",  # unknown letter
        "patient/Observation.readwrite",
        "practitioner/Observation.rs",  # unknown context
        "Patient/Observation.rs",  # context is lower case
        "patient/observation.rs",  # type is a FHIR type name
        "patient/Obs-ervation.rs",
        "patient/Observation.read?category=laboratory",  # v1 has no restrictions
        "patient/Observation.rs?",  # empty query
        "patient/Observation.rs?category",  # no '='
        "patient/Observation.rs?category=",  # empty value
        "patient/Observation.rs?Category=lab",  # parameter names are lower case
        "patient/Observation.rs?category=lab&",  # dangling '&'
        "launch/whatever",
        "admin",
        "patient/*.rs extra/*.rs",
    ],
)
def test_malformed_scopes_are_rejected_by_name(bad: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_scopes(f"openid {bad}")
    offender = bad.split()[-1] if " " in bad else bad
    assert repr(offender) in str(err.value)


@pytest.mark.parametrize(
    ("scopes", "rtype", "interaction", "allowed"),
    [
        ("patient/Observation.read", "Observation", Interaction.READ, True),
        ("patient/Observation.read", "Observation", Interaction.VREAD, True),
        ("patient/Observation.read", "Observation", Interaction.HISTORY_INSTANCE, True),
        ("patient/Observation.read", "Observation", Interaction.SEARCH_TYPE, True),
        ("patient/Observation.read", "Observation", Interaction.CREATE, False),
        ("patient/Observation.read", "Patient", Interaction.READ, False),
        ("patient/Observation.r", "Observation", Interaction.SEARCH_TYPE, False),
        ("patient/Observation.r", "Observation", Interaction.HISTORY_TYPE, False),
        ("patient/Observation.s", "Observation", Interaction.READ, False),
        ("patient/Observation.s", "Observation", Interaction.HISTORY_TYPE, True),
        ("user/*.write", "Appointment", Interaction.CREATE, True),
        ("user/*.write", "Appointment", Interaction.UPDATE, True),
        ("user/*.write", "Appointment", Interaction.PATCH, True),
        ("user/*.write", "Appointment", Interaction.DELETE, True),
        ("user/*.write", "Appointment", Interaction.READ, False),
        ("user/Appointment.cruds", "Appointment", Interaction.DELETE, True),
        ("user/Appointment.cruds", "Observation", Interaction.READ, False),
        ("system/*.*", "AuditEvent", Interaction.SEARCH_TYPE, True),
        ("system/Observation.read", "Observation", Interaction.UPDATE, False),
        ("system/Observation.read", "Patient", Interaction.READ, False),
        ("openid fhirUser launch/patient", "Patient", Interaction.READ, False),
    ],
)
def test_allows(scopes: str, rtype: str, interaction: Interaction, allowed: bool) -> None:
    assert parse_scopes(scopes).allows(rtype, interaction) is allowed


def test_grants_per_context_widest_first_and_restrictions_or_ed() -> None:
    vitals = Restriction((("category", "vital-signs"),))
    s = parse_scopes(
        "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs user/Observation.r"
    )
    assert s.grants("Observation", Interaction.SEARCH_TYPE) == [Grant(ScopeContext.PATIENT, (LAB, vitals))]
    assert s.grants("Observation", Interaction.READ) == [
        Grant(ScopeContext.USER, None),
        Grant(ScopeContext.PATIENT, (LAB, vitals)),
    ]
    assert s.restrictions("Observation", Interaction.SEARCH_TYPE) == (LAB, vitals)
    assert s.restrictions("Observation", Interaction.READ) is None
    # one unrestricted scope in a context lifts that context's restrictions
    t = parse_scopes("patient/Observation.rs?category=laboratory patient/*.read")
    assert t.grants("Observation", P.READ) == [Grant(ScopeContext.PATIENT, None)]
    assert t.grants("Patient", P.CREATE) == []


@pytest.mark.parametrize(
    ("scopes", "rtype", "interaction", "named"),
    [
        ("patient/Observation.rs", "Patient", Interaction.READ, "patient/Patient.r"),
        ("patient/Observation.rs", "Observation", Interaction.CREATE, "patient/Observation.c"),
        ("patient/Observation.r", "Observation", Interaction.SEARCH_TYPE, "patient/Observation.s"),
        ("patient/Observation.read", "Patient", Interaction.SEARCH_TYPE, "patient/Patient.read"),
        ("patient/Observation.read", "Observation", Interaction.DELETE, "patient/Observation.write"),
        ("user/*.read", "Appointment", Interaction.UPDATE, "user/Appointment.write"),
        ("system/Observation.read", "Patient", Interaction.READ, "system/Patient.read"),
        ("system/Observation.rs", "Observation", Interaction.UPDATE, "system/Observation.u"),
        ("openid launch/patient", "Observation", Interaction.READ, "patient/Observation.r"),
        ("openid", "Observation", Interaction.READ, "user/Observation.r"),
    ],
)
def test_missing_scope_names_the_tokens_own_context_and_syntax(
    scopes: str, rtype: str, interaction: Interaction, named: str
) -> None:
    assert parse_scopes(scopes).missing_scope(rtype, interaction) == named


@pytest.mark.parametrize(
    ("requested", "allowed", "granted"),
    [
        ("patient/Observation.rs", "patient/*.rs", "patient/Observation.rs"),
        ("patient/*.rs", "patient/Observation.rs patient/Patient.r", "patient/Observation.rs patient/Patient.r"),
        ("patient/*.cruds", "patient/*.rs", "patient/*.rs"),
        ("patient/Observation.read", "patient/*.read", "patient/Observation.read"),
        ("user/*.*", "patient/*.*", ""),
        ("system/*.rs", "system/Observation.r system/Patient.cud", "system/Observation.r"),
        (
            "patient/Observation.rs",
            "patient/Observation.rs?category=laboratory",
            "patient/Observation.rs?category=laboratory",
        ),
        (
            "patient/Observation.rs?category=laboratory",
            "patient/Observation.rs?status=final",
            "patient/Observation.rs?category=laboratory&status=final",
        ),
        ("openid fhirUser offline_access patient/*.rs", "openid patient/*.read", "openid patient/*.rs"),
        ("launch/patient patient/Patient.r", "launch/patient patient/*.rs", "launch/patient patient/Patient.r"),
        ("patient/*.read patient/*.rs", "patient/*.*", "patient/*.rs"),
    ],
)
def test_granted_subset_is_never_more_than_either_side(requested: str, allowed: str, granted: str) -> None:
    got = granted_subset(parse_scopes(requested), parse_scopes(allowed))
    assert got == parse_scopes(granted)
    assert str(got) == str(parse_scopes(granted))
    # re-granting what was granted changes nothing
    assert granted_subset(got, parse_scopes(allowed)) == got


def test_granted_subset_against_several_limits() -> None:
    client = parse_scopes("openid launch/patient patient/*.cruds user/*.rs")
    role = parse_scopes("openid launch/patient patient/*.rs")
    asked = parse_scopes("openid launch/patient patient/Observation.cruds user/Patient.rs")
    got = granted_subset(asked, [client, role])
    assert got == parse_scopes("openid launch/patient patient/Observation.rs")


def test_str_round_trips() -> None:
    text = "launch/patient openid patient/Observation.rs?category=laboratory user/*.read"
    assert parse_scopes(str(parse_scopes(text))) == parse_scopes(text)
