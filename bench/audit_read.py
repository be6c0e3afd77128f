"""Cost of read auditing (issue #6): audited vs unaudited read throughput, in one run.

Same data set as bench/native_read.py (SQLite, LabResults across patients; patient 0 is
the signed-in patient), one live uvicorn worker, wrk from a second process. Two servers
over the same database file, one with ``GATEWAY_AUDIT_READS=0`` and one with reads
audited (the default), measured alternately (off, on, off, on) so drift hits both.
Paths, as the patient:
  (1) GET /fhir/Observation/{id}
  (2) GET /fhir/Observation?patient=<own>&_count=20   (a 20-result search)
  (3) GET /parse/classes/LabResult/{id}                (the native hot path)
Prints req/s for each, and audited/unaudited per path. Target: >= 0.75. Every audited
response waits for the commit of its entry (group commit), so the figure includes that.

Usage: .venv/bin/python bench/audit_read.py [--seconds 10] [--patients 1000] [--per-patient 100]
       [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import APP_ID, live_server, wrk
from bench.native_read import TOKEN, build


def _scripts(result_ids: list[str], patient_id: str) -> dict[str, tuple[str, str | None]]:
    ids_lua = ",".join(json.dumps(i) for i in result_ids)
    pick = f"local ids = {{{ids_lua}}}\n"
    return {
        "FHIR read Observation/{id}": (
            "",
            pick + "request = function()\n"
            "  return wrk.format('GET', '/fhir/Observation/' .. ids[math.random(#ids)])\nend\n",
        ),
        "FHIR search, 20 results": (f"/fhir/Observation?patient={patient_id}&_count=20", None),
        "native GET LabResult/{id}": (
            "",
            pick + "request = function()\n"
            "  return wrk.format('GET', '/parse/classes/LabResult/' .. ids[math.random(#ids)])\nend\n",
        ),
    }


def _count_audit(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute('SELECT COUNT(*) FROM "AuditLog"').fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=100)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="off/on alternations per path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        print(f"loading {args.patients * args.per_patient} LabResults across {args.patients} patients ...")
        patient_id, result_ids = build(db_path, args.patients, args.per_patient)
        url = f"sqlite+aiosqlite:///{db_path}"
        headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": TOKEN, "Authorization": f"Bearer {TOKEN}"}
        scripts = _scripts(result_ids, patient_id)
        results: dict[str, dict[bool, list[float]]] = {name: {False: [], True: []} for name in scripts}
        trivial: list[float] = []
        before = _count_audit(db_path)
        for _ in range(args.rounds):
            for audited in (False, True):
                with live_server(url, GATEWAY_AUDIT_READS="1" if audited else "0") as base:
                    wrk(base + "/health/live", seconds=1)
                    trivial.append(wrk(base + "/health/live", seconds=max(1, args.seconds // 2)))
                    for name, (path, script) in scripts.items():
                        wrk(base + path, seconds=1, script=script, headers=headers, connections=args.connections)
                        rate = wrk(
                            base + path,
                            seconds=args.seconds,
                            script=script,
                            headers=headers,
                            connections=args.connections,
                        )
                        results[name][audited].append(rate)
        written = _count_audit(db_path) - before
    print(f"trivial JSON route: {sum(trivial) / len(trivial):9.1f} req/s (mean of {len(trivial)})")
    print(f"{'path':32} {'unaudited':>10} {'audited':>10} {'audited/unaudited':>18}")
    for name, by in results.items():
        off, on = sum(by[False]) / len(by[False]), sum(by[True]) / len(by[True])
        ratio = on / off if off else 0.0
        print(f"{name:32} {off:10.1f} {on:10.1f} {ratio:18.3f}   (target >= 0.75)")
    print(f"audit entries written by the audited runs: {written}")


if __name__ == "__main__":
    main()
