"""Demo data (``portal-gateway seed --demo`` and ``serve --demo`` on an empty store). All synthetic.

Written through the record service, so the demo rows carry the same ACLs, versions
and audit entries as anything a real client writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from gateway.auth import roles
from gateway.auth.users import create_user
from gateway.policy.principal import Principal, Role, system
from gateway.records.ops import FieldOp, OpKind
from gateway.records.service import Records
from gateway.store.models import User, table_of

DEMO_PASSWORD = "demo-pass-2026"


@dataclass(frozen=True, slots=True)
class DemoUser:
    email: str
    role: str
    note: str


DEMO_USERS = (
    DemoUser("alice@example.org", "patient", "MRN DEMO-0001, care team: dr.smith"),
    DemoUser("bob@example.org", "patient", "MRN DEMO-0002, care team: dr.jones"),
    DemoUser("dr.smith@example.org", "provider", "Alice's care team"),
    DemoUser("dr.jones@example.org", "provider", "Bob's care team"),
    DemoUser("admin@example.org", "admin", "administrator"),
)


def _ops(values: dict[str, Any]) -> list[FieldOp]:
    return [FieldOp(k, OpKind.SET, v) for k, v in values.items()]


async def store_is_empty(records: Records) -> bool:
    async with records.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table_of(User)))).scalar_one()) == 0


async def seed_demo(records: Records) -> dict[str, str]:
    """Create the demo principals and records; returns username (and ``patient:MRN``, ``provider:name``) -> objectId."""
    actor = system("seed")
    ids: dict[str, str] = {}
    async with records.db.write() as conn:
        for user in DEMO_USERS:
            row = await create_user(conn, records.passwords, user.email, DEMO_PASSWORD, user.email)
            ids[user.email] = row["objectId"]
        await roles.add_user(conn, Role.ADMIN.value, ids["admin@example.org"])
    smith = (
        await records.create(
            actor,
            "ProviderProfile",
            _ops(
                {
                    "user": ids["dr.smith@example.org"],
                    "displayName": "Dr. Sarah Smith",
                    "npi": "1999999984",
                    "specialty": "Internal Medicine",
                    "clinic": "Riverside Clinic",
                    "contact": {"email": "dr.smith@example.org", "phone": "+1-555-0100"},
                }
            ),
        )
    ).record["objectId"]
    jones = (
        await records.create(
            actor,
            "ProviderProfile",
            _ops(
                {
                    "user": ids["dr.jones@example.org"],
                    "displayName": "Dr. Tom Jones",
                    "npi": "1999999992",
                    "specialty": "Family Medicine",
                    "clinic": "Hillside Clinic",
                    "contact": {"email": "dr.jones@example.org"},
                }
            ),
        )
    ).record["objectId"]
    alice = await _patient(
        records,
        actor,
        "DEMO-0001",
        "Alice",
        "Example",
        "1985-03-14",
        "female",
        "Riverside Clinic",
        smith,
        ids["alice@example.org"],
    )
    bob = await _patient(
        records,
        actor,
        "DEMO-0002",
        "Bob",
        "Sample",
        "1979-11-02",
        "male",
        "Hillside Clinic",
        jones,
        ids["bob@example.org"],
    )
    ids.update(
        {"patient:DEMO-0001": alice, "patient:DEMO-0002": bob, "provider:dr.smith": smith, "provider:dr.jones": jones}
    )
    now = datetime.now(UTC).replace(microsecond=0)
    await _labs(records, actor, alice, smith, now, full=True)
    await _labs(records, actor, bob, jones, now, full=False)
    for patient, provider, provider_user, patient_user in (
        (alice, smith, ids["dr.smith@example.org"], ids["alice@example.org"]),
        (bob, jones, ids["dr.jones@example.org"], ids["bob@example.org"]),
    ):
        await _plans_messages_appointments(records, actor, patient, provider, provider_user, patient_user, now)
    return ids


async def _patient(
    records: Records,
    actor: Principal,
    mrn: str,
    given: str,
    family: str,
    dob: str,
    gender: str,
    clinic: str,
    provider: str,
    user_id: str,
) -> str:
    created = await records.create(
        actor,
        "PatientProfile",
        _ops(
            {
                "medicalRecordNumber": mrn,
                "givenName": given,
                "familyName": family,
                "displayName": f"{given} {family}",
                "dateOfBirth": dob,
                "gender": gender,
                "primaryClinic": clinic,
                "careTeam": [provider],
                "isActive": True,
                "contact": {"email": f"{given.lower()}@example.org", "phone": "+1-555-0142"},
            }
        ),
    )
    patient_id = str(created.record["objectId"])
    await records.update(actor, "PatientProfile", patient_id, _ops({"user": user_id}))
    return patient_id


LABS = (
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "98", "mg/dL", "70-99", "N"),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "13.2", "g/dL", "12.0-15.5", "N"),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "212", "mg/dL", "<200", "H"),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "0.9", "mg/dL", "0.6-1.1", "N"),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "6.1", "10*3/uL", "4.5-11.0", "N"),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "5.4", "%", "<5.7", "N"),
)
POTASSIUM = ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "5.9", "mmol/L", "3.5-5.1", "H")
ALT = ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "31", "U/L", "7-56", "")


def _lab_values(
    patient: str, provider: str, order: str, lab: tuple[str, ...], status: str, effective: datetime
) -> dict[str, Any]:
    code, name, value, units, ref, flag = lab
    values: dict[str, Any] = {
        "patient": patient,
        "orderedBy": provider,
        "orderId": f"ORD-{patient[:4]}-{order}",
        "testCode": code,
        "codeSystem": "LN",
        "testName": name,
        "resultValue": value,
        "valueType": "NM",
        "units": units,
        "referenceRange": ref,
        "status": status,
        "effectiveAt": effective,
        "visibility": "shared",
        "resultData": {"value": float(value)},
    }
    if flag:
        values["interpretation"] = flag
    return values


async def _labs(records: Records, actor: Principal, patient: str, provider: str, now: datetime, *, full: bool) -> None:
    """Final results, one corrected to version 2, and one preliminary result the patient must not see."""
    for i, lab in enumerate(LABS if full else LABS[:3]):
        values = _lab_values(patient, provider, str(i // 3 + 1), lab, "final", now - timedelta(days=10 - i))
        await records.create(actor, "LabResult", _ops(values))
    first = _lab_values(patient, provider, "9", POTASSIUM, "final", now - timedelta(days=3))
    corrected = await records.create(actor, "LabResult", _ops(first))
    correction = {
        "resultValue": "4.4",
        "interpretation": "N",
        "status": "corrected",
        "resultData": {"value": 4.4},
        "notes": "Corrected: the first specimen was hemolyzed.",
    }
    await records.update(actor, "LabResult", corrected.record["objectId"], _ops(correction))
    pending = _lab_values(patient, provider, "10", ALT, "preliminary", now - timedelta(hours=6))
    await records.create(actor, "LabResult", _ops(pending))


async def _plans_messages_appointments(
    records: Records,
    actor: Principal,
    patient: str,
    provider: str,
    provider_user: str,
    patient_user: str,
    now: datetime,
) -> None:
    await records.create(
        actor,
        "TreatmentPlan",
        _ops(
            {
                "patient": patient,
                "provider": provider,
                "summary": "Lower LDL cholesterol",
                "details": "Mediterranean diet, 30 minutes of walking daily, recheck lipids in 3 months.",
                "status": "active",
                "startDate": now - timedelta(days=7),
                "endDate": now + timedelta(days=83),
            }
        ),
    )
    await records.create(
        actor,
        "TreatmentPlan",
        _ops(
            {
                "patient": patient,
                "provider": provider,
                "summary": "Start statin if LDL stays high (draft)",
                "details": "Discuss atorvastatin 10 mg at the next visit.",
                "status": "draft",
            }
        ),
    )
    thread = f"thread-{patient}"
    for i, (sender, recipient, body) in enumerate(
        (
            (patient_user, provider_user, "Hello doctor, should I fast before my next blood test?"),
            (provider_user, patient_user, "Yes, please fast for 10-12 hours; water is fine."),
            (patient_user, provider_user, "Thank you!"),
        )
    ):
        await records.create(
            actor,
            "Message",
            _ops(
                {
                    "patient": patient,
                    "from": sender,
                    "to": recipient,
                    "body": body,
                    "conversationId": thread,
                    "sentAt": now - timedelta(hours=30 - i),
                }
            ),
        )
    await records.create(
        actor,
        "Appointment",
        _ops(
            {
                "patient": patient,
                "provider": provider,
                "startAt": now + timedelta(days=14),
                "endAt": now + timedelta(days=14, minutes=30),
                "location": "Room 12",
                "status": "scheduled",
                "reason": "Lipid panel follow-up",
            }
        ),
    )
