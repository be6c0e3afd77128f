"""Catalog A04: Hypothesis enumerates searches, modifiers, ``_include`` and ``_revinclude`` values from
the CapabilityStatement and runs them with a patient-launch token of a provider who, by their own
record rules, could also see another patient. Every entry that comes back -- match or include --
must belong to the launch patient's compartment (or be a Practitioner, the shared directory),
and nothing may be a server error. The oracle reads the resource's own references; it does not
ask ``gateway.policy``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.fhir import router
from tests.api_support import Api
from tests.smart.scopes_support import Door, call, open_door, user_token
from tests.smart.test_scopes_policy import _join_care_team, _labs_by_patient

ITERATE = st.sampled_from(["", ":iterate"])


def _values(resource: dict[str, Any], key: str) -> st.SearchStrategy[str]:
    """The CapabilityStatement's include values for a type, plus the ``*`` wildcard."""
    return st.sampled_from(["*", *resource.get(key, [])])


@pytest.fixture
async def door(demo: Api) -> AsyncIterator[Door]:
    async with open_door(demo) as opened:
        yield opened


def _patient_refs(resource: dict[str, Any]) -> set[str]:
    """Every ``Patient/<id>`` a resource points at (subject, recipient, participants ...)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and "Patient/" in ref:
                found.add(ref.rsplit("Patient/", 1)[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(resource)
    return found


def _in_compartment(resource: dict[str, Any], patient: str) -> bool:
    kind = resource["resourceType"]
    if kind == "Practitioner":
        return True
    if kind == "Patient":
        return bool(resource["id"] == patient)
    refs = _patient_refs(resource)
    return bool(refs) and refs <= {patient}


async def test_patient_launch_never_leaves_its_compartment(demo: Api, door: Door) -> None:
    await _join_care_team(demo, "bob:patient", "smith:provider")
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    labs = await _labs_by_patient(demo)
    token = await user_token(door, "smith", "launch/patient patient/*.rs", patient=alice)
    cap = (await router.metadata(door.ctx)).body
    assert cap is not None
    served = {r["type"]: r for r in cap["rest"][0]["resource"] if r["type"] != "AuditEvent"}

    values = [
        alice,
        bob,
        f"Patient/{alice}",
        f"Patient/{bob}",
        labs[bob][0]["objectId"],
        labs[alice][0]["objectId"],
        "DEMO-0001",
        "DEMO-0002",
        "final",
        "laboratory",
        "2345-7",
        "http://loinc.org|2345-7",
        "gt2000-01-01",
        "true",
        "Sample",
        demo.ids["jones:provider"],
    ]
    query = st.sampled_from(sorted(served)).flatmap(
        lambda rtype: st.tuples(
            st.just(rtype),
            st.lists(
                st.tuples(
                    st.sampled_from([p["name"] for p in served[rtype]["searchParam"]]),
                    st.sampled_from(["", ":missing", ":exact"]),
                    st.sampled_from(values),
                ),
                max_size=2,
            ),
            st.lists(st.tuples(ITERATE, _values(served[rtype], "searchInclude")), max_size=2),
            st.lists(st.tuples(ITERATE, _values(served[rtype], "searchRevInclude")), max_size=2),
        )
    )

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(query)
    def run(
        case: tuple[str, list[tuple[str, str, str]], list[tuple[str, str]], list[tuple[str, str]]],
    ) -> None:
        rtype, params, includes, revincludes = case
        pairs = [(name + mod, "true" if mod == ":missing" else value) for name, mod, value in params]
        pairs += [("_include" + mod, v) for mod, v in includes]
        pairs += [("_revinclude" + mod, v) for mod, v in revincludes]
        pairs.append(("_count", "1000"))
        checks.append((rtype, pairs))

    checks: list[tuple[str, list[tuple[str, str]]]] = []
    run()
    assert len(checks) >= 50
    for rtype, pairs in checks:
        url = f"{rtype}?{urlencode(pairs)}"
        resp = await call(door, token, "GET", url)
        assert resp.status in (200, 400), (url, resp.body)
        if resp.status != 200:
            continue
        assert resp.body is not None
        for entry in resp.body.get("entry", []):
            if entry["search"]["mode"] == "outcome":
                continue
            assert _in_compartment(entry["resource"], alice), (url, entry["resource"])
