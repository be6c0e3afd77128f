"""FHIR search under the record rules: parameters, paging, result parameters, unknown parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.api_support import Api
from tests.fhir.support import bearer, fget, ids, lab, link, search, valid


async def _all(demo: Api, who: str, path: str, **params: str) -> list[str]:
    """Follow ``next`` links to the end; asserts every page is a valid searchset."""
    out: list[str] = []
    bundle = await search(demo, path, who, **params)
    while True:
        assert bundle["type"] == "searchset"
        out += ids(bundle)
        nxt = link(bundle, "next")
        if nxt is None:
            return out
        parts = urlsplit(nxt)
        bundle = await search(demo, parts.path, who, **dict(parse_qsl(parts.query)))


async def test_alice_sees_only_her_published_observations(demo: Api) -> None:
    prelim = await lab(demo)
    bob_lab = await lab(demo, "jones", patient=demo.ids["bob:patient"], status="final")
    mine = await _all(demo, "alice", "/fhir/Observation")
    assert mine and prelim not in mine and bob_lab not in mine
    smith = await _all(demo, "smith", "/fhir/Observation")
    assert prelim in smith and set(mine) < set(smith) and bob_lab not in smith
    bundle = await search(demo, "/fhir/Observation", "alice", _count="1000")
    for entry in bundle["entry"]:
        assert entry["resource"]["subject"]["reference"] == f"Patient/{demo.ids['alice:patient']}"
        assert entry["resource"]["status"] in ("final", "corrected", "amended")


@pytest.mark.parametrize("param", ["patient", "subject"])
async def test_reference_forms(demo: Api, param: str) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    expected = sorted(await _all(demo, "alice", "/fhir/Observation"))
    for value in (f"Patient/{alice}", alice, f"http://testserver.local/fhir/Patient/{alice}"):
        assert sorted(await _all(demo, "alice", "/fhir/Observation", **{param: value})) == expected
    for value in (f"Patient/{bob}", bob, f"http://elsewhere.example/fhir/Patient/{alice}", f"Group/{alice}"):
        assert await _all(demo, "alice", "/fhir/Observation", **{param: value}) == []
    assert await _all(demo, "jones", "/fhir/Observation", **{param: alice}) == []


async def test_id_search_never_crosses_patients(demo: Api) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    assert ids(await search(demo, "/fhir/Patient", "alice", _id=f"{alice},{bob}")) == [alice]
    assert ids(await search(demo, "/fhir/Patient", "alice", _id=bob)) == []
    assert ids(await search(demo, "/fhir/Patient", "jones", _id=alice)) == []
    assert sorted(ids(await search(demo, "/fhir/Patient", "admin", _id=f"{alice},{bob}"))) == sorted([alice, bob])


async def test_paging_follows_next_links_without_gaps_or_repeats(demo: Api) -> None:
    for _ in range(4):
        await lab(demo, status="final")
    everything = await _all(demo, "smith", "/fhir/Observation", _count="1000")
    paged = await _all(demo, "smith", "/fhir/Observation", _count="3")
    assert paged == everything and len(paged) == len(set(paged)) >= 10
    by_date = await _all(demo, "smith", "/fhir/Observation", _count="2", _sort="-date")
    assert sorted(by_date) == sorted(everything)
    first = await search(demo, "/fhir/Observation", "smith", _count="2", _sort="-date")
    assert link(first, "self") is not None and "_sort=-date" in (link(first, "next") or "")


async def test_paging_is_stable_under_inserts(demo: Api) -> None:
    first = await search(demo, "/fhir/Observation", "smith", _count="3")
    seen = ids(first)
    await lab(demo, status="final")
    nxt = urlsplit(link(first, "next") or "")
    rest = await _all(demo, "smith", nxt.path, **dict(parse_qsl(nxt.query)))
    assert not set(seen) & set(rest)


async def test_tampered_or_foreign_cursor_is_400(demo: Api) -> None:
    first = await search(demo, "/fhir/Observation", "alice", _count="2")
    params = dict(parse_qsl(urlsplit(link(first, "next") or "").query))
    cursor = params["_cursor"]
    body, sig = cursor.split(".")
    for bad in (body[:-2] + "xx." + sig, body + "." + sig[:-2] + "AA", "garbage", cursor + "x"):
        r = await fget(demo, "/fhir/Observation", "alice", **{**params, "_cursor": bad})
        assert r.status_code == 400, bad
        assert valid(r.json())["issue"][0]["code"] == "invalid"
    r = await fget(demo, "/fhir/Observation", "alice", _count="2", status="final", _cursor=cursor)
    assert r.status_code == 400, "a cursor is bound to its query"
    r = await fget(demo, "/fhir/Patient", "alice", _count="2", _cursor=cursor)
    assert r.status_code == 400


async def test_count_is_clamped_and_validated(demo: Api) -> None:
    bundle = await search(demo, "/fhir/Observation", "smith", _count="5000")
    assert "_count=1000" in (link(bundle, "self") or "")
    bundle = await search(demo, "/fhir/Observation", "smith", _count="2")
    assert len(ids(bundle)) == 2 and link(bundle, "next")
    for bad in ("-1", "abc"):
        assert (await fget(demo, "/fhir/Observation", "smith", _count=bad)).status_code == 400


async def test_total_and_summary_count(demo: Api) -> None:
    mine = await _all(demo, "alice", "/fhir/Observation")
    bundle = await search(demo, "/fhir/Observation", "alice", _total="accurate", _count="2")
    assert bundle["total"] == len(mine) and len(ids(bundle)) == 2
    assert "total" not in await search(demo, "/fhir/Observation", "alice")
    counted = await search(demo, "/fhir/Observation", "alice", _summary="count")
    assert counted["total"] == len(mine) and "entry" not in counted
    assert (await fget(demo, "/fhir/Observation", "alice", _summary="text")).status_code == 400
    assert (await fget(demo, "/fhir/Observation", "alice", _total="maybe")).status_code == 400


async def test_unknown_parameters_lenient_and_strict(demo: Api) -> None:
    lenient = await search(demo, "/fhir/Observation", "alice", bogus="1")
    outcomes = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1 and outcomes[0]["resource"]["issue"][0]["severity"] == "warning"
    assert ids(lenient) == ids(await search(demo, "/fhir/Observation", "alice"))
    r = await demo.client.get(
        "/fhir/Observation", params={"bogus": "1"}, headers={**bearer(demo, "alice"), "Prefer": "handling=strict"}
    )
    assert r.status_code == 400 and valid(r.json())["issue"][0]["expression"] == ["bogus"]
    r = await fget(demo, "/fhir/Observation", "alice", **{"status:fancy": "final"})
    assert r.status_code == 400


async def test_observation_code_status_category_date(demo: Api) -> None:
    glucose = await lab(demo, status="final", effectiveAt={"__type": "Date", "iso": "2021-06-15T10:00:00.000Z"})
    local = await lab(demo, status="final", codeSystem="L", testCode="GLU-LOCAL")
    found = ids(await search(demo, "/fhir/Observation", "smith", code="http://loinc.org|2345-7"))
    assert glucose in found and local not in found
    assert glucose in ids(await search(demo, "/fhir/Observation", "smith", code="2345-7"))
    assert ids(await search(demo, "/fhir/Observation", "smith", code="|2345-7")) == []
    assert ids(await search(demo, "/fhir/Observation", "smith", code="http://snomed.info/sct|2345-7")) == []
    assert local in ids(await search(demo, "/fhir/Observation", "smith", code="GLU-LOCAL"))
    prelim = ids(await search(demo, "/fhir/Observation", "smith", status="preliminary"))
    assert prelim and glucose not in prelim
    both = ids(await search(demo, "/fhir/Observation", "smith", status="preliminary,final", _count="1000"))
    assert set(prelim) | {glucose} <= set(both)
    labs = ids(await search(demo, "/fhir/Observation", "smith", category="laboratory", _count="1000"))
    assert glucose in labs
    assert ids(await search(demo, "/fhir/Observation", "smith", category="vital-signs")) == []
    for value in ("2021", "2021-06", "2021-06-15", "ge2021-06-15T09:00:00Z", "lt2021-07", "eb2022", "ap2021-06-15"):
        assert glucose in ids(await search(demo, "/fhir/Observation", "smith", date=value, _count="1000")), value
    for value in ("2020", "gt2021-06-15", "sa2021-06-15", "lt2021-06-15", "ne2021-06-15", "2021-06-15T11:00Z"):
        assert glucose not in ids(await search(demo, "/fhir/Observation", "smith", date=value, _count="1000")), value
    ranged = ids(await search(demo, "/fhir/Observation", "smith", date=["ge2021-01-01", "le2021-12-31"]))
    assert ranged == [glucose]
    assert (await fget(demo, "/fhir/Observation", "smith", date="2021-13")).status_code == 400
    assert (await fget(demo, "/fhir/Observation", "smith", date="yesterday")).status_code == 400


def _instant(value: str) -> datetime:
    """Instants compare as times, not strings: a whole second is written without a fraction
    (``...:20Z``), which sorts after ``...:20.004Z`` as text but is earlier."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_sort_by_date(demo: Api) -> None:
    bundle = await search(demo, "/fhir/Observation", "smith", _sort="-date", _count="1000")
    dates = [e["resource"].get("effectiveDateTime") for e in bundle["entry"]]
    present = [d for d in dates if d]
    assert present == sorted(present, key=_instant, reverse=True) and dates[: len(present)] == present
    bundle = await search(demo, "/fhir/Observation", "smith", _sort="date", _count="1000")
    present = [e["resource"]["effectiveDateTime"] for e in bundle["entry"] if "effectiveDateTime" in e["resource"]]
    assert present == sorted(present, key=_instant)
    bundle = await search(demo, "/fhir/Observation", "smith", _sort="_lastUpdated", _count="1000")
    stamps = [e["resource"]["meta"]["lastUpdated"] for e in bundle["entry"]]
    assert stamps == sorted(stamps, key=_instant)
    assert _instant("2026-12-03T01:45:20Z") < _instant("2026-12-03T01:45:20.004000Z")  # the case that failed
    assert (await fget(demo, "/fhir/Observation", "smith", _sort="value")).status_code == 400


async def test_last_updated(demo: Api) -> None:
    recent = await lab(demo, status="final")
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert recent in ids(await search(demo, "/fhir/Observation", "smith", _lastUpdated=f"ge{since}", _count="1000"))
    assert ids(await search(demo, "/fhir/Observation", "smith", _lastUpdated="lt2000")) == []


async def test_patient_parameters(demo: Api) -> None:
    alice = demo.ids["alice:patient"]

    async def found(**params: str) -> list[str]:
        return ids(await search(demo, "/fhir/Patient", "admin", **params))

    mrn = "https://portal-gateway.example.org/fhir/sid/mrn"
    assert await found(identifier=f"{mrn}|DEMO-0001") == [alice]
    assert await found(identifier="DEMO-0001") == [alice]
    assert await found(identifier="http://other.example|DEMO-0001") == []
    assert await found(name="ali") == [alice]
    assert await found(name="EXAMPLE") == [alice]
    assert await found(family="Example") == [alice]
    assert await found(given="Alice") == [alice]
    assert await found(**{"name:exact": "ali"}) == []
    assert await found(**{"name:contains": "xampl"}) == [alice]
    assert await found(birthdate="1985-03-14") == [alice]
    assert await found(birthdate="1985") == [alice]
    assert alice not in await found(birthdate="gt1985-03-14")
    assert await found(gender="female") == [alice]
    assert alice not in await found(gender="male")
    assert await found(family="Example", gender="male") == []
    assert await found(name="100%_") == []
    assert ids(await search(demo, "/fhir/Patient", "alice", name="Bob")) == []


async def test_practitioner_directory(demo: Api) -> None:
    smith = demo.ids["smith:provider"]
    npi = "http://hl7.org/fhir/sid/us-npi"
    assert ids(await search(demo, "/fhir/Practitioner", "alice", identifier=f"{npi}|1999999984")) == [smith]
    assert ids(await search(demo, "/fhir/Practitioner", "alice", name="Dr. Sarah")) == [smith]
    assert len(ids(await search(demo, "/fhir/Practitioner", "bob"))) == 2


async def test_appointment_careplan_communication(demo: Api) -> None:
    alice, bob = demo.ids["alice:patient"], demo.ids["bob:patient"]
    appts = await search(demo, "/fhir/Appointment", "alice", patient=alice, status="booked", date="ge2000")
    assert len(ids(appts)) == 1
    assert ids(await search(demo, "/fhir/Appointment", "alice", status="cancelled")) == []
    assert ids(await search(demo, "/fhir/Appointment", "alice", patient=bob)) == []
    plans = await search(demo, "/fhir/CarePlan", "alice", patient=alice)
    assert [e["resource"]["status"] for e in plans["entry"]] == ["active"], "draft plans stay with the care team"
    team = await search(demo, "/fhir/CarePlan", "smith", patient=alice, status="draft")
    assert len(ids(team)) == 1
    assert len(ids(await search(demo, "/fhir/Communication", "alice", patient=alice))) == 3
    assert ids(await search(demo, "/fhir/Communication", "jones", patient=alice)) == []


async def test_post_search_form(demo: Api) -> None:
    alice = demo.ids["alice:patient"]
    h = bearer(demo, "alice")
    r = await demo.client.post(
        "/fhir/Observation/_search",
        content=f"patient={alice}&_count=2".encode(),
        headers={**h, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    bundle = valid(r.json())
    assert len(ids(bundle)) == 2 and link(bundle, "next")
    r = await demo.client.post(
        "/fhir/Observation/_search", content=b"{}", headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 415


async def test_nul_characters_are_400_not_500(demo: Api) -> None:
    for path, params in (
        ("/fhir/Patient", {"name": "a\x00b"}),
        ("/fhir/Patient", {"_id": "a\x00"}),
        ("/fhir/Observation", {"patient": "Patient/\x00"}),
        ("/fhir/Observation", {"code": "x\x00|y"}),
    ):
        r = await fget(demo, path, "admin", **params)
        assert r.status_code == 400, (path, params, r.text)
        assert valid(r.json())["resourceType"] == "OperationOutcome"


async def test_more_parameters(demo: Api) -> None:
    alice, smith, jones = demo.ids["alice:patient"], demo.ids["smith:provider"], demo.ids["jones:provider"]
    assert ids(await search(demo, "/fhir/Patient", "alice", active="true")) == [alice]
    assert ids(await search(demo, "/fhir/Patient", "alice", active="false")) == []
    assert (await fget(demo, "/fhir/Patient", "alice", active="maybe")).status_code == 400
    assert len(ids(await search(demo, "/fhir/Appointment", "alice", practitioner=f"Practitioner/{smith}"))) == 1
    assert ids(await search(demo, "/fhir/Appointment", "alice", practitioner=jones)) == []
    assert ids(await search(demo, "/fhir/Appointment", "alice", practitioner=f"Patient/{smith}")) == []
    messages = await search(demo, "/fhir/Communication", "alice", subject=alice, sent="ge2000", _sort="-date")
    sent = [e["resource"]["sent"] for e in messages["entry"]]
    assert len(sent) == 3 and sent == sorted(sent, reverse=True)
    assert ids(await search(demo, "/fhir/Communication", "alice", sent="lt2000")) == []


async def test_missing_modifier(demo: Api) -> None:
    undated = await lab(demo, status="final")
    dated = ids(await search(demo, "/fhir/Observation", "smith", **{"date:missing": "false"}, _count="1000"))
    missing = ids(await search(demo, "/fhir/Observation", "smith", **{"date:missing": "true"}, _count="1000"))
    assert undated in missing and undated not in dated and dated and not set(dated) & set(missing)
    assert ids(await search(demo, "/fhir/Patient", "alice", **{"name:missing": "true"})) == []
    assert (await fget(demo, "/fhir/Observation", "smith", **{"date:missing": "perhaps"})).status_code == 400
