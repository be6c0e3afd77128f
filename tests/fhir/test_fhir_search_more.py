"""More search: reference paths (join, _User, multi-target), value-quantity, periods, AuditEvent,
chained parameters, ``_elements`` and ``previous`` links — each under the record rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.api_support import Api
from tests.fhir.support import bearer, fget, ids, lab, link, search, valid


async def _found(demo: Api, path: str, who: str, **params: Any) -> list[str]:
    return ids(await search(demo, path, who, _count="1000", **params))


async def test_general_practitioner(demo: Api) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    smith, jones = demo.ids["smith:provider"], demo.ids["jones:provider"]
    gp = "general-practitioner"
    assert await _found(demo, "/fhir/Patient", "admin", **{gp: smith}) == [alice]
    assert await _found(demo, "/fhir/Patient", "admin", **{gp: f"Practitioner/{jones}"}) == [bob]
    assert await _found(demo, "/fhir/Patient", "admin", **{gp: f"Patient/{jones}"}) == []
    assert await _found(demo, "/fhir/Patient", "alice", **{gp: jones}) == []
    assert sorted(await _found(demo, "/fhir/Patient", "admin", **{f"{gp}:missing": "false"})) == sorted([alice, bob])


async def test_value_quantity(demo: Api) -> None:
    odd = await lab(demo, status="final", resultValue="7.25", units="mmol/L", testCode="X-1")
    text = await lab(demo, status="final", resultValue="positive", valueType="ST", testCode="X-2")
    mixed = await lab(demo, status="final", resultValue="abc7", units="mmol/L", testCode="X-3")
    vq = "value-quantity"

    async def found(value: str) -> set[str]:
        return set(await _found(demo, "/fhir/Observation", "smith", **{vq: value}))

    assert odd in await found("7.25")
    assert odd not in await found("7.2"), "7.2 means [7.15, 7.25)"
    assert odd in await found("7.3"), "7.3 means [7.25, 7.35)"
    assert odd not in await found("7.4") and odd in await found("7.250")
    assert odd in await found("ge7") and odd in await found("gt7.2") and odd in await found("le7.25")
    assert odd not in await found("lt7.25") and odd not in await found("gt7.25")
    assert odd in await found("ne8") and odd not in await found("ne7.25")
    assert odd in await found("ap7") and odd not in await found("ap5")
    assert odd in await found("sa7") and odd in await found("eb8")
    assert odd in await found("7.25|http://unitsofmeasure.org|mmol/L")
    assert odd in await found("7.25||mmol/L")
    assert odd not in await found("7.25|http://unitsofmeasure.org|mg/dL")
    assert odd not in await found("7.25|http://other.example|mmol/L")
    everything = await found("ge-1000000")
    assert text not in everything and mixed not in everything, "only numeric results have a quantity"
    glucose = {
        e["resource"]["id"]
        for e in (await search(demo, "/fhir/Observation", "smith", code="2345-7", _count="1000"))["entry"]
        if e["resource"].get("valueQuantity", {}).get("value") == 98
    }
    assert glucose and glucose <= await found("98|http://unitsofmeasure.org|mg/dL")
    for bad in ("abc", "1|2", "ge", "1e999999999"):
        r = await fget(demo, "/fhir/Observation", "smith", **{vq: bad})
        assert r.status_code == 400, bad
    assert not await _found(demo, "/fhir/Observation", "jones", **{vq: "7.25"})


async def test_careplan_period_date(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    active = await _found(demo, "/fhir/CarePlan", "alice", status="active")
    assert len(active) == 1
    plan = (await fget(demo, f"/fhir/CarePlan/{active[0]}", "alice")).json()
    start, end = plan["period"]["start"][:10], plan["period"]["end"][:10]
    assert active[0] in await _found(demo, "/fhir/CarePlan", "alice", date=f"ge{start}")
    assert active[0] in await _found(demo, "/fhir/CarePlan", "alice", date=f"le{end}")
    assert active[0] in await _found(demo, "/fhir/CarePlan", "alice", date=f"sa{int(start[:4]) - 1}")
    assert active[0] not in await _found(demo, "/fhir/CarePlan", "alice", date=f"sa{start}")
    assert active[0] not in await _found(demo, "/fhir/CarePlan", "alice", date=f"eb{end}")
    assert active[0] in await _found(demo, "/fhir/CarePlan", "alice", date=f"eb{int(end[:4]) + 1}")
    assert active[0] not in await _found(demo, "/fhir/CarePlan", "alice", date=f"eq{start}")
    assert active[0] in await _found(demo, "/fhir/CarePlan", "alice", date=f"ne{start}")
    assert active[0] in await _found(demo, "/fhir/CarePlan", "alice", date=f"gt{start}")
    assert await _found(demo, "/fhir/CarePlan", "alice", subject=alice) == await _found(
        demo, "/fhir/CarePlan", "alice", patient=alice
    )
    bundle = await search(demo, "/fhir/CarePlan", "smith", _sort="-date")
    assert bundle["entry"]
    us_core = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
    assert active == await _found(demo, "/fhir/CarePlan", "alice", category=f"{us_core}|assess-plan")
    assert active == await _found(demo, "/fhir/CarePlan", "alice", category="assess-plan")
    assert await _found(demo, "/fhir/CarePlan", "alice", category="http://snomed.info/sct|assess-plan") == []
    assert await _found(demo, "/fhir/CarePlan", "alice", category="other") == []


async def test_communication_sender_recipient(demo: Api) -> None:
    alice, smith = demo.ids["alice:patient"], demo.ids["smith:provider"]
    mine = await _found(demo, "/fhir/Communication", "alice")
    sent_by_alice = await _found(demo, "/fhir/Communication", "alice", sender=f"Patient/{alice}")
    sent_by_smith = await _found(demo, "/fhir/Communication", "alice", sender=f"Practitioner/{smith}")
    assert sent_by_alice and sent_by_smith and sorted(sent_by_alice + sent_by_smith) == sorted(mine)
    assert await _found(demo, "/fhir/Communication", "alice", recipient=smith) == sent_by_alice
    assert await _found(demo, "/fhir/Communication", "alice", recipient=f"Patient/{alice}") == sent_by_smith
    assert await _found(demo, "/fhir/Communication", "alice", **{"sender:Practitioner": alice}) == []
    assert await _found(demo, "/fhir/Communication", "jones", sender=f"Patient/{alice}") == []
    for entry in (await search(demo, "/fhir/Communication", "alice", sender=alice))["entry"]:
        assert entry["resource"]["sender"]["reference"] == f"Patient/{alice}"
    first = (await search(demo, "/fhir/Communication", "alice", _count="1"))["entry"][0]["resource"]
    thread = first["identifier"][0]
    same = await _found(demo, "/fhir/Communication", "alice", identifier=f"{thread['system']}|{thread['value']}")
    assert first["id"] in same
    assert same == await _found(demo, "/fhir/Communication", "alice", identifier=thread["value"])
    assert await _found(demo, "/fhir/Communication", "alice", identifier=f"http://x.example|{thread['value']}") == []
    assert await _found(demo, "/fhir/Communication", "jones", identifier=thread["value"]) == []


async def test_appointment_actor(demo: Api) -> None:
    alice, smith, jones = demo.ids["alice:patient"], demo.ids["smith:provider"], demo.ids["jones:provider"]
    by_patient = await _found(demo, "/fhir/Appointment", "alice", actor=f"Patient/{alice}")
    assert by_patient and by_patient == await _found(demo, "/fhir/Appointment", "alice", actor=smith)
    assert await _found(demo, "/fhir/Appointment", "alice", actor=jones) == []
    assert await _found(demo, "/fhir/Appointment", "alice", **{"actor:Patient": smith}) == []
    assert await _found(demo, "/fhir/Appointment", "alice", actor=f"Group/{alice}") == []


async def test_audit_event_parameters(demo: Api) -> None:
    alice, smith = demo.ids["alice:patient"], demo.ids["smith:provider"]
    oid = await lab(demo, status="final")
    events = await search(demo, "/fhir/AuditEvent", "admin", entity=f"Observation/{oid}", _count="1000")
    assert events["entry"]
    for entry in events["entry"]:
        whats = [e.get("what", {}).get("reference") for e in entry["resource"].get("entity", [])]
        assert f"Observation/{oid}" in whats
    created = await _found(demo, "/fhir/AuditEvent", "admin", entity=f"Observation/{oid}", action="C")
    assert len(created) == 1
    assert created == await _found(
        demo, "/fhir/AuditEvent", "admin", entity=oid, subtype="http://hl7.org/fhir/restful-interaction|create"
    )
    assert created[0] in await _found(
        demo, "/fhir/AuditEvent", "admin", agent=f"Practitioner/{smith}", type="rest", date="ge2000"
    )
    assert created[0] in await _found(demo, "/fhir/AuditEvent", "admin", patient=alice)
    assert created[0] not in await _found(demo, "/fhir/AuditEvent", "admin", agent=f"Patient/{alice}")
    assert created[0] not in await _found(demo, "/fhir/AuditEvent", "admin", action="R,U,D,E")
    logins = await _found(demo, "/fhir/AuditEvent", "admin", subtype="110122")
    login_type = await _found(
        demo, "/fhir/AuditEvent", "admin", type="http://dicom.nema.org/resources/ontology/DCM|110114"
    )
    assert set(logins) <= set(login_type)
    assert await _found(demo, "/fhir/AuditEvent", "admin", action="X") == []
    r = await fget(demo, "/fhir/AuditEvent", "smith", patient=alice)
    assert r.status_code == 403


async def test_chained_parameters(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    alices = sorted(await _found(demo, "/fhir/Observation", "smith", patient=alice))
    assert sorted(await _found(demo, "/fhir/Observation", "smith", **{"patient.identifier": "DEMO-0001"})) == alices
    assert sorted(await _found(demo, "/fhir/Observation", "smith", **{"subject:Patient.name": "Alice"})) == alices
    assert await _found(demo, "/fhir/Observation", "smith", **{"patient.name:exact": "Ali"}) == []
    assert sorted(await _found(demo, "/fhir/Observation", "smith", **{"patient.family:exact": "Example"})) == alices
    by_npi = await _found(demo, "/fhir/Observation", "smith", **{"performer.identifier": "1999999984"})
    assert set(alices) & set(by_npi)
    # Chaining never crosses the record rules: smith cannot read bob, so bob's name finds nothing.
    assert await _found(demo, "/fhir/Observation", "smith", **{"patient.name": "Bob"}) == []
    assert await _found(demo, "/fhir/Observation", "alice", **{"patient.name": "Bob"}) == []
    assert await _found(demo, "/fhir/Patient", "alice", **{"general-practitioner.name": "Dr. Sarah"}) == [alice]
    assert await _found(demo, "/fhir/Communication", "alice", **{"sender:Patient.identifier": "DEMO-0001"})
    for bad in ("patient.identifier.system", "status.name", "patient.nothing", "subject:Group.name"):
        r = await fget(demo, "/fhir/Observation", "smith", **{bad: "x"})
        assert r.status_code == 400, bad
        assert valid(r.json())["resourceType"] == "OperationOutcome"


async def test_elements(demo: Api) -> None:
    r = await fget(demo, "/fhir/Observation", "alice", _elements="subject", _count="2")
    assert r.status_code == 200
    valid(r.json())
    for entry in r.json()["entry"]:
        res = entry["resource"]
        assert set(res) == {"resourceType", "id", "meta", "subject", "status", "code"}, "status/code are mandatory"
        assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"} in res[
            "meta"
        ]["tag"]
    assert "_elements=subject" in (link(r.json(), "next") or "")
    patients = await search(demo, "/fhir/Patient", "admin", _elements="gender,birthDate")
    assert all(set(e["resource"]) <= {"resourceType", "id", "meta", "gender", "birthDate"} for e in patients["entry"])
    assert (await fget(demo, "/fhir/Observation", "alice", _elements=",")).status_code == 400


async def test_previous_links_walk_back_exactly(demo: Api) -> None:
    for _ in range(3):
        await lab(demo, status="final")
    for sort in (None, "-date", "date", "_lastUpdated"):
        params = {"_count": "3", **({"_sort": sort} if sort else {})}
        pages: list[list[str]] = []
        bundle = await search(demo, "/fhir/Observation", "smith", **params)
        assert link(bundle, "previous") is None
        forward = [bundle]
        while (nxt := link(bundle, "next")) is not None:
            parts = urlsplit(nxt)
            bundle = await search(demo, parts.path, "smith", **dict(parse_qsl(parts.query)))
            forward.append(bundle)
        pages = [ids(b) for b in forward]
        assert len(pages) >= 3, sort
        back: list[list[str]] = [ids(bundle)]
        while (prev := link(bundle, "previous")) is not None:
            parts = urlsplit(prev)
            bundle = await search(demo, parts.path, "smith", **dict(parse_qsl(parts.query)))
            back.append(ids(bundle))
            assert link(bundle, "next") is not None
        assert back[::-1] == pages, sort
    r = await demo.client.get("/fhir/Observation", params={"_count": "3"}, headers=bearer(demo, "alice"))
    first = r.json()
    nxt = urlsplit(link(first, "next") or "")
    second = await search(demo, nxt.path, "alice", **dict(parse_qsl(nxt.query)))
    prev = urlsplit(link(second, "previous") or "")
    again = await search(demo, prev.path, "alice", **dict(parse_qsl(prev.query)))
    assert ids(again) == ids(first)


async def test_no_parameter_value_makes_a_500(demo: Api) -> None:
    """Every registered parameter (plain, :missing, chained) with awkward values: 200 or a 4xx OperationOutcome."""
    from gateway.fhir.params import ReferenceParam
    from gateway.fhir.registry import RESOURCES

    values = ["", ",", "x", "ge", "1|2|3|4", "|", "Patient/", "http://", "ap-1e5", "eq2020-13-40", "é" * 300, "a.b"]
    for rtype, rdef in RESOURCES.items():
        names = [*rdef.params, *(f"{n}:missing" for n in rdef.params)]
        names += [f"{n}.name" for n, p in rdef.params.items() if isinstance(p, ReferenceParam)]
        names += ["_include", "_revinclude", "_elements", "_sort", "_count", "_total", "_summary", "_cursor"]
        for name in names:
            for value in values:
                r = await fget(demo, f"/fhir/{rtype}", "admin", **{name: value})
                assert r.status_code in (200, 400), (rtype, name, value, r.status_code, r.text[:300])
                valid(r.json())
    for value in ("x", "-1", "2020-13", ""):
        for path in ("/fhir/_history", "/fhir/Patient/_history"):
            for name in ("_count", "_since", "_cursor"):
                r = await fget(demo, path, "admin", **{name: value})
                assert r.status_code in (200, 400), (path, name, value, r.text[:300])
