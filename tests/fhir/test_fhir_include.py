"""``_include`` / ``_revinclude``: included entries obey the read rules, and the CapabilityStatement lists them."""

from __future__ import annotations

from typing import Any

from tests.api_support import Api
from tests.fhir.support import bearer, fget, ids, lab, search, valid


def included(bundle: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "include"
    }


def warnings(bundle: dict[str, Any]) -> list[str]:
    return [
        issue["diagnostics"]
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "outcome"
        for issue in e["resource"]["issue"]
    ]


async def test_forward_includes(demo: Api) -> None:
    alice, smith = demo.ids["alice:patient"], demo.ids["smith:provider"]
    bundle = await search(
        demo, "/fhir/Observation", "alice", _include=["Observation:patient", "Observation:performer"], _count="3"
    )
    assert len(ids(bundle)) == 3
    assert included(bundle) == {f"Patient/{alice}", f"Practitioner/{smith}"}
    for entry in bundle["entry"]:
        if entry["search"]["mode"] == "include":
            assert entry["fullUrl"].endswith(f"{entry['resource']['resourceType']}/{entry['resource']['id']}")
    assert included(await search(demo, "/fhir/Patient", "alice", _include="Patient:general-practitioner")) == {
        f"Practitioner/{smith}"
    }
    plans = await search(demo, "/fhir/CarePlan", "alice", _include="CarePlan:subject")
    assert included(plans) == {f"Patient/{alice}"}
    appts = await search(demo, "/fhir/Appointment", "alice", _include="Appointment:actor")
    assert included(appts) == {f"Patient/{alice}", f"Practitioner/{smith}"}
    only_pract = await search(demo, "/fhir/Appointment", "alice", _include="Appointment:actor:Practitioner")
    assert included(only_pract) == {f"Practitioner/{smith}"}
    messages = await search(
        demo, "/fhir/Communication", "alice", _include=["Communication:sender", "Communication:recipient"]
    )
    assert included(messages) == {f"Patient/{alice}", f"Practitioner/{smith}"}
    # No include without a match, and no include asked for: no include entries.
    nothing = await search(demo, "/fhir/Observation", "alice", _include="Observation:patient", code="none")
    assert included(nothing) == set()
    assert included(await search(demo, "/fhir/Observation", "alice")) == set()


async def test_revinclude(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    mine = set(ids(await search(demo, "/fhir/Observation", "alice", _count="1000")))
    bundle = await search(demo, "/fhir/Patient", "alice", _revinclude="Observation:patient")
    assert ids(bundle) == [alice]
    assert included(bundle) == {f"Observation/{oid}" for oid in mine}
    team = await search(
        demo, "/fhir/Practitioner", "alice", _id=demo.ids["smith:provider"], _revinclude="Patient:general-practitioner"
    )
    assert included(team) == {f"Patient/{alice}"}, "only the patients alice may read"


async def test_included_resources_of_other_patients_never_appear(demo: Api) -> None:
    alice, bob, smith = demo.ids["alice:patient"], demo.ids["bob:patient"], demo.ids["smith:provider"]
    # A result for bob ordered by smith (smith is not on bob's care team), and a preliminary one for alice.
    bobs = await lab(demo, "jones", patient=bob, status="final", orderedBy=_ptr("ProviderProfile", smith))
    prelim = await lab(demo, "smith", orderedBy=_ptr("ProviderProfile", smith))
    by_smith = "Observation:performer"
    for who in ("alice", "smith"):
        bundle = await search(demo, "/fhir/Practitioner", who, _id=smith, _revinclude=by_smith)
        assert f"Observation/{bobs}" not in included(bundle), who
    alice_view = included(await search(demo, "/fhir/Practitioner", "alice", _id=smith, _revinclude=by_smith))
    assert f"Observation/{prelim}" not in alice_view and alice_view
    assert f"Observation/{prelim}" in included(
        await search(demo, "/fhir/Practitioner", "smith", _id=smith, _revinclude=by_smith, _count="1000")
    )
    master = await search(demo, "/fhir/Practitioner", "master", _id=smith, _revinclude=by_smith)
    assert f"Observation/{bobs}" in included(master)
    # jones's patients: alice is not one of them, through any include.
    jones_view = await search(
        demo, "/fhir/Practitioner", "jones", _revinclude=["Patient:general-practitioner", "Appointment:actor"]
    )
    assert f"Patient/{bob}" in included(jones_view) and f"Patient/{alice}" not in included(jones_view)
    alice_appts = set(ids(await search(demo, "/fhir/Appointment", "alice")))
    assert alice_appts and not {f"Appointment/{a}" for a in alice_appts} & included(jones_view)


def _ptr(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


async def test_admin_only_types_are_never_included_for_others(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    await demo.get(f"/parse/classes/PatientProfile/{alice}", "smith")  # leaves audit entries about alice
    for who in ("alice", "smith"):
        bundle = await search(demo, "/fhir/Patient", who, _id=alice, _revinclude="AuditEvent:patient")
        assert ids(bundle) == [alice] and not any(i.startswith("AuditEvent/") for i in included(bundle)), who
    admin = await search(demo, "/fhir/Patient", "admin", _id=alice, _revinclude="AuditEvent:patient", _count="1")
    events = [i for i in included(admin) if i.startswith("AuditEvent/")]
    assert events
    r = await fget(demo, f"/fhir/{events[0]}", "admin")
    assert r.status_code == 200 and any(
        e.get("what", {}).get("reference") == f"Patient/{alice}" for e in r.json()["entity"]
    )


async def test_bad_include_values(demo: Api) -> None:
    for value in ("Observation:nothing", "Patient:general-practitioner", "Observation", "Observation:patient:Group"):
        lenient = await search(demo, "/fhir/Observation", "alice", _include=value)
        assert warnings(lenient) and not included(lenient), value
        r = await demo.client.get(
            "/fhir/Observation",
            params={"_include": value},
            headers={**bearer(demo, "alice"), "Prefer": "handling=strict"},
        )
        assert r.status_code == 400 and valid(r.json())["issue"][0]["code"] == "not-supported", value
    r = await demo.client.get(
        "/fhir/Patient",
        params={"_revinclude": "Observation:performer"},
        headers={**bearer(demo, "alice"), "Prefer": "handling=strict"},
    )
    assert r.status_code == 400, "Observation:performer points at Practitioner, not Patient"
    lenient = await search(demo, "/fhir/Observation", "alice", **{"_include:deep": "Observation:patient"})
    assert warnings(lenient) and not included(lenient)


async def test_include_with_paging_links(demo: Api) -> None:
    first = await search(demo, "/fhir/Observation", "alice", _include="Observation:patient", _count="2")
    nxt = next(item["url"] for item in first["link"] if item["relation"] == "next")
    assert "_include=Observation%3Apatient" in nxt
    r = await demo.client.get(nxt, headers=bearer(demo, "alice"))
    assert r.status_code == 200 and included(valid(r.json())) == {f"Patient/{demo.ids['alice:patient']}"}


async def test_capability_statement_lists_exactly_the_includes(demo: Api) -> None:
    r = await demo.client.get("/fhir/metadata")
    by_type = {res["type"]: res for res in r.json()["rest"][0]["resource"]}
    assert by_type["Observation"]["searchInclude"] == [
        "Observation:patient",
        "Observation:subject",
        "Observation:performer",
    ]
    assert "Observation:patient" in by_type["Patient"]["searchRevInclude"]
    assert "Patient:general-practitioner" in by_type["Practitioner"]["searchRevInclude"]
    assert "searchRevInclude" not in by_type["Observation"]
    # Every advertised value works under strict handling, for every type.
    for rtype, res in by_type.items():
        who = "admin"
        for key, param in (("searchInclude", "_include"), ("searchRevInclude", "_revinclude")):
            for value in res.get(key, []):
                resp = await demo.client.get(
                    f"/fhir/{rtype}",
                    params={param: value, "_count": "2"},
                    headers={**bearer(demo, who), "Prefer": "handling=strict"},
                )
                assert resp.status_code == 200, (rtype, param, value, resp.text)
                valid(resp.json())


async def test_included_types_obey_smart_scopes(demo: Api) -> None:
    from tests.smart.scopes_support import call, match_ids, open_door, user_token

    async with open_door(demo) as door:
        await _scoped_includes(demo, door, call, match_ids, user_token)


async def _scoped_includes(demo: Api, door: Any, call: Any, match_ids: Any, user_token: Any) -> None:
    alice, bob, smith = demo.ids["alice:patient"], demo.ids["bob:patient"], demo.ids["smith:provider"]

    def inc(resp: Any) -> set[str]:
        assert resp.status == 200, resp.body
        return included(resp.body)

    no_patient = await user_token(door, "alice", "patient/Observation.rs patient/Practitioner.rs")
    url = "Observation?_include=Observation:patient&_include=Observation:performer&_count=2"
    assert inc(await call(door, no_patient, "GET", url)) == {f"Practitioner/{smith}"}, "no Patient scope: left out"
    both = await user_token(door, "alice", "patient/Observation.rs patient/Patient.r patient/Practitioner.r")
    assert inc(await call(door, both, "GET", url)) == {f"Patient/{alice}", f"Practitioner/{smith}"}
    # A provider token confined to alice (launch patient): bob's records never come in through a revinclude.
    await lab(demo, "jones", patient=bob, status="final", orderedBy=_ptr("ProviderProfile", smith))
    confined = await user_token(door, "admin", "patient/*.rs", patient=alice)
    resp = await call(door, confined, "GET", f"Practitioner?_id={smith}&_revinclude=Observation:performer&_count=1")
    assert match_ids(resp) == [smith]
    seen = {ref.split("/")[1] for ref in inc(resp)}
    alice_obs = set(match_ids(await call(door, confined, "GET", "Observation?_count=1000")))
    assert seen and seen <= alice_obs
    # A chained parameter is no way around a missing scope either.
    chained = await call(door, no_patient, "GET", "Observation?patient.identifier=DEMO-0001")
    assert match_ids(chained) == []


async def test_revinclude_through_user_references(demo: Api) -> None:
    alice, smith = demo.ids["alice:patient"], demo.ids["smith:provider"]
    from_smith = await search(demo, "/fhir/Communication", "alice", sender=f"Practitioner/{smith}")
    expected = {f"Communication/{oid}" for oid in ids(from_smith)}
    bundle = await search(demo, "/fhir/Practitioner", "alice", _id=smith, _revinclude="Communication:sender")
    assert expected and included(bundle) == expected
    to_alice = await search(demo, "/fhir/Patient", "alice", _revinclude="Communication:recipient")
    assert included(to_alice) == expected
    assert (
        included(await search(demo, "/fhir/Patient", "jones", _id=alice, _revinclude="Communication:sender")) == set()
    )


async def test_iterate_follows_included_resources(demo: Api) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    smith, jones = demo.ids["smith:provider"], demo.ids["jones:provider"]
    two_hops = await search(
        demo,
        "/fhir/Observation",
        "alice",
        _include="Observation:patient",
        _count="2",
        **{"_include:iterate": "Patient:general-practitioner"},
    )
    assert included(two_hops) == {f"Patient/{alice}", f"Practitioner/{smith}"}
    without = await search(demo, "/fhir/Observation", "alice", _include="Observation:patient", _count="2")
    assert included(without) == {f"Patient/{alice}"}, "without :iterate the second hop is not taken"
    # jones's patients, then their results: bob's only, never alice's.
    chain = await search(
        demo,
        "/fhir/Practitioner",
        "jones",
        _id=jones,
        _revinclude="Patient:general-practitioner",
        **{"_revinclude:iterate": "Observation:patient"},
    )
    got = included(chain)
    assert f"Patient/{bob}" in got and f"Patient/{alice}" not in got
    bobs = {f"Observation/{oid}" for oid in ids(await search(demo, "/fhir/Observation", "jones", _count="1000"))}
    assert {i for i in got if i.startswith("Observation/")} == bobs and bobs
    # A Patient reached by iterate is still only one the caller may read.
    smith_view = await search(
        demo,
        "/fhir/Practitioner",
        "smith",
        _id=jones,
        _revinclude="Patient:general-practitioner",
        **{"_revinclude:iterate": "Observation:patient"},
    )
    assert included(smith_view) == set()


def _about(resource: dict[str, Any]) -> set[str]:
    """Every Patient a resource points at (or is)."""
    if resource["resourceType"] == "Patient":
        return {resource["id"]}
    refs: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            ref = value.get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                refs.add(ref.removeprefix("Patient/"))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(resource)
    return refs


async def test_a04_every_advertised_include_stays_in_the_compartment(demo: Api) -> None:
    """Catalog A04: alice, every _include/_revinclude value the CapabilityStatement offers (alone and
    as :iterate after each other value): every entry is hers, or a Practitioner."""
    alice = demo.ids["alice:patient"]
    await lab(
        demo,
        "jones",
        patient=demo.ids["bob:patient"],
        status="final",
        orderedBy=_ptr("ProviderProfile", demo.ids["smith:provider"]),
    )
    caps = {r["type"]: r for r in (await demo.client.get("/fhir/metadata")).json()["rest"][0]["resource"]}
    every = [
        (param, value)
        for res in caps.values()
        for param, key in (("_include", "searchInclude"), ("_revinclude", "searchRevInclude"))
        for value in res.get(key, [])
    ]
    for rtype, res in caps.items():
        if rtype == "AuditEvent":
            continue
        own = [
            (p, v)
            for p, v in every
            if (p == "_include" and v in res.get("searchInclude", []))
            or (p == "_revinclude" and v in res.get("searchRevInclude", []))
        ]
        for param, value in own:
            for extra_param, extra_value in [("", ""), *every]:
                params: dict[str, Any] = {param: value, "_count": "50"}
                if extra_param:
                    params[f"{extra_param}:iterate"] = extra_value
                r = await fget(demo, f"/fhir/{rtype}", "alice", **params)
                assert r.status_code == 200, (rtype, params, r.text[:300])
                for entry in r.json().get("entry", []):
                    resource = entry["resource"]
                    kind = resource["resourceType"]
                    if kind in ("Practitioner", "OperationOutcome"):
                        continue
                    assert kind != "AuditEvent", (rtype, params)
                    assert _about(resource) == {alice}, (rtype, params, kind, resource["id"])


async def test_wildcard_includes(demo: Api) -> None:
    alice, smith = demo.ids["alice:patient"], demo.ids["smith:provider"]
    for value in ("*", "Observation:*"):
        bundle = await search(demo, "/fhir/Observation", "alice", _include=value, _count="3")
        assert included(bundle) == {f"Patient/{alice}", f"Practitioner/{smith}"}, value
    everything = included(await search(demo, "/fhir/Patient", "alice", _revinclude="*"))
    kinds = {ref.split("/")[0] for ref in everything}
    assert kinds == {"Observation", "CarePlan", "Communication", "Appointment"}, kinds
    mine = {f"Observation/{oid}" for oid in ids(await search(demo, "/fhir/Observation", "alice", _count="1000"))}
    assert {ref for ref in everything if ref.startswith("Observation/")} == mine
    admin = included(await search(demo, "/fhir/Patient", "admin", _id=alice, _revinclude="*", _count="1"))
    assert any(ref.startswith("AuditEvent/") for ref in admin)
    lenient = await search(demo, "/fhir/Practitioner", "alice", _include="*")
    assert warnings(lenient) and not included(lenient), "Practitioner has no references to include"
