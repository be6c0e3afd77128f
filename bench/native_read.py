"""Native read path under load: issue #2's benchmark.

One run: SQLite with 100k LabResults across 1k patients, one live uvicorn worker, wrk
from a second process. Prints requests/s for
  (a) a trivial JSON route (/health/live),
  (b) GET /parse/classes/LabResult/{id} as a patient,
  (c) the patient's latest 20 LabResults, order=-publishedAt, include=orderedBy,
and the ratios b/a (target >= 0.4) and c/a (target >= 0.15), authorization on.
Read auditing (issue #6) is on, as in production, unless ``--no-audit`` is given.

Usage: .venv/bin/python bench/native_read.py [--seconds 10] [--rounds 3] [--patients 1000] [--per-patient 100]
       [--no-audit]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import APP_ID, interleaved, live_server, ratios, wrk
from gateway.policy.acl import flatten
from gateway.policy.rules import PatientLink, record_acl
from gateway.store import models
from gateway.store.ids import new_object_id
from gateway.store.migrate import upgrade

TOKEN = "r:bench0000000000000000000000000000"


def build(db_path: Path, patients: int, per_patient: int, first_patient: int | None = None) -> tuple[str, list[str]]:
    """Bulk-load the data set with plain Core inserts; returns (patient 0's id, some of its result ids).

    ``first_patient``: how many results patient 0 (the one the benchmarks sign in as) has, when it
    should differ from ``per_patient``."""
    url = f"sqlite:///{db_path}"
    upgrade(f"sqlite+aiosqlite:///{db_path}")
    engine = create_engine(url)
    now = datetime.now(UTC)
    rng = random.Random(7)
    user_id, role_id = new_object_id(), new_object_id()
    with engine.begin() as conn:
        conn.execute(
            insert(models.table_of(models.User)),
            {
                "objectId": user_id,
                "username": "p0@example.org",
                "createdAt": now,
                "updatedAt": now,
                "ACL": {},
                "_rperm": [user_id],
                "_wperm": [user_id],
            },
        )
        conn.execute(
            insert(models.table_of(models.Role)),
            {
                "objectId": role_id,
                "name": "patient",
                "createdAt": now,
                "updatedAt": now,
                "ACL": {},
                "_rperm": [],
                "_wperm": [],
            },
        )
        conn.execute(insert(models.table_of(models.RoleUser)), {"owningId": role_id, "relatedId": user_id})
        conn.execute(
            insert(models.table_of(models.Session)),
            {
                "objectId": new_object_id(),
                "user": user_id,
                "createdAt": now,
                "updatedAt": now,
                "expiresAt": now + timedelta(days=1),
                "restricted": False,
                "_token_hash": hashlib.sha256(TOKEN.encode()).hexdigest(),
                "ACL": {},
                "_rperm": [],
                "_wperm": [],
            },
        )
        providers = [new_object_id() for _ in range(20)]
        conn.execute(
            insert(models.table_of(models.ProviderProfile)),
            [
                {
                    "objectId": p,
                    "displayName": f"Dr {i}",
                    "npi": f"10000000{i:02d}",
                    "createdAt": now,
                    "updatedAt": now,
                    "isActive": True,
                    "version": 1,
                    "ACL": {"*": {"read": True}},
                    "_rperm": ["*"],
                    "_wperm": [],
                }
                for i, p in enumerate(providers)
            ],
        )
        patient_ids = [new_object_id() for _ in range(patients)]
        rows = []
        for i, pid in enumerate(patient_ids):
            link = PatientLink(pid, user_id if i == 0 else None)
            row = {
                "objectId": pid,
                "medicalRecordNumber": f"MRN-{i:06d}",
                "user": link.patient_user_id,
                "createdAt": now,
                "updatedAt": now,
                "isActive": True,
                "version": 1,
            }
            acl = record_acl("PatientProfile", row, link)
            rows.append({**row, "ACL": acl, "_rperm": flatten(acl)[0], "_wperm": flatten(acl)[1]})
        conn.execute(insert(models.table_of(models.PatientProfile)), rows)
        first_results: list[str] = []
        for i, pid in enumerate(patient_ids):
            link = PatientLink(pid, user_id if i == 0 else None)
            batch: list[dict[str, Any]] = []
            for j in range(first_patient if i == 0 and first_patient is not None else per_patient):
                ts = now - timedelta(hours=rng.randint(1, 24 * 365))
                row = {
                    "objectId": new_object_id(),
                    "patient": pid,
                    "orderedBy": rng.choice(providers),
                    "orderId": f"O{i}-{j // 10}",
                    "testCode": "2345-7",
                    "codeSystem": "LN",
                    "testName": "Glucose",
                    "resultValue": str(rng.randint(60, 200)),
                    "valueType": "NM",
                    "units": "mg/dL",
                    "referenceRange": "70-99",
                    "status": "final",
                    "effectiveAt": ts,
                    "publishedAt": ts,
                    "visibility": "shared",
                    "createdAt": ts,
                    "updatedAt": ts,
                    "version": 1,
                }
                acl = record_acl("LabResult", row, link)
                rperm, wperm = flatten(acl)
                batch.append({**row, "ACL": acl, "_rperm": rperm, "_wperm": wperm})
            conn.execute(insert(models.table_of(models.LabResult)), batch)
            if i == 0:
                first_results = [r["objectId"] for r in batch]
    engine.dispose()
    return patient_ids[0], first_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of (a, b, c)")
    parser.add_argument("--no-audit", action="store_true", help="turn read auditing off (GATEWAY_AUDIT_READS=0)")
    args = parser.parse_args()
    env = {"GATEWAY_AUDIT_READS": "0"} if args.no_audit else {}
    print(f"read auditing: {'off' if args.no_audit else 'on'}")
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        print(f"loading {args.patients * args.per_patient} LabResults across {args.patients} patients ...")
        _, result_ids = build(db_path, args.patients, args.per_patient)
        headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": TOKEN}
        ids_lua = ",".join(json.dumps(i) for i in result_ids)
        get_script = (
            f"local ids = {{{ids_lua}}}\n"
            "request = function()\n"
            "  return wrk.format('GET', '/parse/classes/LabResult/' .. ids[math.random(#ids)])\n"
            "end\n"
        )
        with live_server(f"sqlite+aiosqlite:///{db_path}", **env) as base:
            wrk(base + "/health/live", seconds=2)
            runs = interleaved(
                {
                    "a": lambda: wrk(base + "/health/live", seconds=args.seconds),
                    "b": lambda: wrk(base, seconds=args.seconds, script=get_script, headers=headers),
                    "c": lambda: wrk(
                        base + "/parse/classes/LabResult?order=-publishedAt&include=orderedBy&limit=20",
                        seconds=args.seconds,
                        headers=headers,
                    ),
                },
                args.rounds,
            )
    a = statistics.median(runs["a"])
    print(f"{args.rounds} interleaved rounds of {args.seconds} s; ratios are medians of per-round ratios (range)")
    print(f"(a) trivial JSON route            {a:9.1f} req/s")
    figures = (("b", "GET LabResult by id (patient)", 0.40), ("c", "latest 20 + include orderedBy", 0.15))
    for key, label, target in figures:
        mid, low, high = ratios(runs[key], runs["a"])
        print(
            f"({key}) {label:29} {statistics.median(runs[key]):9.1f} req/s   {key}/a = {mid:.3f} "
            f"({low:.3f}-{high:.3f})  (target >= {target:.2f})"
        )


if __name__ == "__main__":
    main()
