"""FHIR read path under load: issue #3's benchmark.

One run: SQLite with LabResults (= Observations) across 1k patients, one live uvicorn
worker, wrk from a second process, authorization on. Prints requests/s for
  (a) a trivial JSON route (/health/live),
  (r) GET /fhir/Observation/{id} as the patient,
  (s) GET /fhir/Observation?patient=X&_sort=-date&_count=20 as the patient,
and the ratios r/a (target >= 0.4) and s/a (target >= 0.2).

With ``--scale`` it then repeats (a) and (s) on stores of 10k, 100k and 1M Observations
(1k patients; 10, 100 and 1000 results each, so the searched patient's own history
grows with the store) and prints the search cost at each size relative to 10k
(target: 1M within 1.5x of 10k). Building the 1M store takes a few minutes and about
1 GB of disk in the temp directory.

Read auditing (issue #6) is on, as in production, unless ``--no-audit`` is given.

Usage: .venv/bin/python bench/fhir_read.py [--seconds 10] [--scale] [--no-audit]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import APP_ID, live_server, wrk
from bench.native_read import TOKEN, build


def _server_env(audit: bool) -> dict[str, str]:
    return {} if audit else {"GATEWAY_AUDIT_READS": "0"}


def measure(
    db_path: Path, patient: str, result_ids: list[str], seconds: int, audit: bool
) -> tuple[float, float, float]:
    headers = {"X-Parse-Application-Id": APP_ID, "Authorization": f"Bearer {TOKEN}", "Accept": "application/fhir+json"}
    ids_lua = ",".join(json.dumps(i) for i in result_ids)
    read_script = (
        f"local ids = {{{ids_lua}}}\n"
        "request = function()\n"
        "  return wrk.format('GET', '/fhir/Observation/' .. ids[math.random(#ids)])\n"
        "end\n"
    )
    with live_server(f"sqlite+aiosqlite:///{db_path}", **_server_env(audit)) as base:
        wrk(base + "/health/live", seconds=2)
        a = wrk(base + "/health/live", seconds=seconds)
        r = wrk(base, seconds=seconds, script=read_script, headers=headers)
        s = wrk(f"{base}/fhir/Observation?patient={patient}&_sort=-date&_count=20", seconds=seconds, headers=headers)
    return a, r, s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--scale", action="store_true", help="also run the search at 10k, 100k and 1M Observations")
    parser.add_argument("--no-audit", action="store_true", help="turn read auditing off (GATEWAY_AUDIT_READS=0)")
    args = parser.parse_args()
    audit = not args.no_audit
    print(f"read auditing: {'on' if audit else 'off'}")
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        print("loading 100000 Observations across 1000 patients ...")
        patient, result_ids = build(db_path, 1000, 100)
        a, r, s = measure(db_path, patient, result_ids, args.seconds, audit)
        print(f"(a) trivial JSON route                 {a:9.1f} req/s")
        print(f"(r) GET Observation/{{id}} (patient)     {r:9.1f} req/s   r/a = {r / a:.3f}  (target >= 0.40)")
        print(f"(s) search patient, -date, _count=20   {s:9.1f} req/s   s/a = {s / a:.3f}  (target >= 0.20)")
        if not args.scale:
            return
        costs: dict[int, float] = {}
        for per_patient in (10, 100, 1000):
            path = Path(tmp) / f"scale-{per_patient}.db"
            total = 1000 * per_patient
            print(f"loading {total} Observations across 1000 patients ...")
            patient, result_ids = build(path, 1000, per_patient)
            a, _, s = measure(path, patient, result_ids[:50], args.seconds, audit)
            costs[total] = a / s  # cost of one search in units of the trivial route, same run
            print(f"    {total:>8} Observations: search {s:8.1f} req/s, s/a = {s / a:.3f}")
            path.unlink()
        base_cost = costs[10_000]
        for total, cost in costs.items():
            print(f"search cost at {total:>8} = {cost / base_cost:.2f}x the cost at 10k   (target at 1M <= 1.5x)")


if __name__ == "__main__":
    main()
