"""Cross-principal access matrix (catalog A01): every demo object x every principal, REST and JS-SDK form.

The oracle below is written from DESIGN.md's rules, independently of gateway/policy:
it decides from the stored data who may read each object, and the API must agree
for 100% of cells; denied cells must be byte-identical to a missing object.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway.store.engine import create_engine
from gateway.store.models import metadata
from tests.api_support import APP_ID, Api

PRINCIPALS = ("alice", "bob", "smith", "jones", "admin")
CLASSES = (
    "PatientProfile",
    "ProviderProfile",
    "LabResult",
    "TreatmentPlan",
    "Message",
    "Appointment",
    "AuditLog",
    "_User",
    "_Session",
    "_Role",
)
PUBLISHED = {"final", "corrected", "amended"}


async def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(url)
    out: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for name in (*CLASSES, "_Join_careTeam_PatientProfile", "_Join_users_Role"):
            rows = await conn.execute(select(metadata.tables[name]))
            out[name] = [dict(r) for r in rows.mappings()]
    await engine.dispose()
    return out


def _oracle(data: dict[str, list[dict[str, Any]]], ids: dict[str, str]) -> dict[str, set[tuple[str, str]]]:
    users = {p: ids[f"{'dr.' if p in ('smith', 'jones') else ''}{p}:user"] for p in PRINCIPALS}
    provider_of_user = {r["user"]: r["objectId"] for r in data["ProviderProfile"] if r["user"]}
    patient_of_user = {r["user"]: r["objectId"] for r in data["PatientProfile"] if r["user"]}
    team = {}
    for link in data["_Join_careTeam_PatientProfile"]:
        team.setdefault(link["owningId"], set()).add(link["relatedId"])
    role_names = {r["objectId"]: r["name"] for r in data["_Role"]}
    members: dict[str, set[str]] = {}
    for link in data["_Join_users_Role"]:
        members.setdefault(role_names[link["owningId"]], set()).add(link["relatedId"])
    visible: dict[str, set[tuple[str, str]]] = {p: set() for p in PRINCIPALS}
    for who in PRINCIPALS:
        uid = users[who]
        admin = who == "admin"
        own_patient = patient_of_user.get(uid)
        my_provider = provider_of_user.get(uid)

        def on_team(patient_id: str) -> bool:
            return my_provider is not None and my_provider in team.get(patient_id, set())  # noqa: B023

        for cls in CLASSES:
            for row in data[cls]:
                oid = row["objectId"]
                if cls == "PatientProfile":
                    ok = admin or oid == own_patient or on_team(oid)
                elif cls == "ProviderProfile":
                    ok = True
                elif cls in ("LabResult", "TreatmentPlan", "Message", "Appointment"):
                    pid = row["patient"]
                    ok = admin or on_team(pid)
                    if pid == own_patient:
                        if cls == "LabResult":
                            ok = ok or (
                                row["status"] in PUBLISHED
                                and row["publishedAt"] is not None
                                and row["visibility"] != "provider-only"
                            )
                        elif cls == "TreatmentPlan":
                            ok = ok or row["status"] != "draft"
                        else:
                            ok = True
                    if cls == "Message" and uid in (row["from"], row["to"]):
                        ok = ok or pid == own_patient or on_team(pid)
                elif cls == "AuditLog":
                    ok = admin or (own_patient is not None and row["patient"] == own_patient)
                elif cls == "_User":
                    ok = admin or oid == uid
                elif cls == "_Session":
                    ok = row["user"] == uid
                else:
                    ok = admin or uid in members.get(row["name"], set())
                if ok:
                    visible[who].add((cls, oid))
    return visible


async def test_every_principal_sees_exactly_what_the_rules_allow(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    data = await _rows(url)
    expected = _oracle(data, demo.ids)
    missing = await demo.get("/parse/classes/LabResult/AbCdEfGhIj", "alice")
    absent_body = missing.content
    mismatches = []
    cells = 0
    for who in PRINCIPALS:
        for cls in CLASSES:
            for row in data[cls]:
                oid = row["objectId"]
                cells += 1
                r = await demo.get(f"/parse/classes/{cls}/{oid}", who)
                allowed = (cls, oid) in expected[who]
                if allowed != (r.status_code == 200):
                    mismatches.append((who, cls, oid, r.status_code, allowed))
                if not allowed and r.content != absent_body:
                    mismatches.append((who, cls, oid, "denied body differs", r.text))
    assert cells > 300
    assert mismatches == []


async def test_js_sdk_form_agrees_with_rest(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    data = await _rows(url)
    for who in ("alice", "jones"):
        for cls in ("LabResult", "TreatmentPlan", "PatientProfile"):
            for row in data[cls]:
                rest = await demo.get(f"/parse/classes/{cls}/{row['objectId']}", who)
                sdk = await demo.client.post(
                    f"/parse/classes/{cls}/{row['objectId']}",
                    content=(
                        f'{{"_method":"GET","_ApplicationId":"{APP_ID}","_SessionToken":"{demo.tokens[who]}"}}'
                    ).encode(),
                    headers={"Content-Type": "text/plain"},
                )
                assert (rest.status_code, rest.content) == (sdk.status_code, sdk.content)


async def test_denied_writes_change_nothing(demo: Api, demo_database: Any) -> None:
    url, _ = demo_database
    data = await _rows(url)
    expected = _oracle(data, demo.ids)
    for who in ("bob", "jones"):
        for row in data["LabResult"]:
            if ("LabResult", row["objectId"]) in expected[who]:
                continue
            # A patient is refused by the class permissions (119, says nothing about the record);
            # a provider outside the care team gets "not found" (101).
            expected_code = 119 if who == "bob" else 101
            r = await demo.put(f"/parse/classes/LabResult/{row['objectId']}", {"notes": "x"}, who)
            assert r.json()["code"] == expected_code
            r = await demo.delete(f"/parse/classes/LabResult/{row['objectId']}", who)
            assert r.json()["code"] == expected_code
    after = await _rows(url)
    assert [(r["objectId"], r["version"], r["updatedAt"]) for r in after["LabResult"]] == [
        (r["objectId"], r["version"], r["updatedAt"]) for r in data["LabResult"]
    ]
