"""FHIR read path under load: issue #3's benchmark.

One run: SQLite with LabResults (= Observations) across 1k patients, one live uvicorn
worker, wrk from a second process, authorization on. Prints requests/s for
  (a) a trivial JSON route (/health/live),
  (r) GET /fhir/Observation/{id} as the patient,
  (s) GET /fhir/Observation?patient=X&_sort=-date&_count=20 as the patient,
and the ratios r/a (target >= 0.4) and s/a (target >= 0.2).

With ``--scale`` it then repeats (a) and (s) on stores of 10k, 100k and 1M Observations
(1k patients; 10, 100 and 1000 results each; the searched patient has at least 100, so
each page holds the same 20 entries and only the store grows) and prints the search cost
at each size relative to 10k
(target: 1M within 1.5x of 10k). Building the 1M store takes a few minutes and about
1 GB of disk in the temp directory.

Read auditing (issue #6) is on, as in production, unless ``--no-audit`` is given.

Usage: .venv/bin/python bench/fhir_read.py [--seconds 10] [--rounds 3] [--scale] [--no-audit]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import APP_ID, interleaved, live_server, ratios, wrk
from bench.native_read import TOKEN, build


def _server_env(audit: bool) -> dict[str, str]:
    return {} if audit else {"GATEWAY_AUDIT_READS": "0"}


def measure(
    db_path: Path, patient: str, result_ids: list[str], seconds: int, audit: bool, rounds: int = 1
) -> dict[str, list[float]]:
    """req/s of (a), (r) and (s) per interleaved round."""
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
        search = f"{base}/fhir/Observation?patient={patient}&_sort=-date&_count=20"
        return interleaved(
            {
                "a": lambda: wrk(base + "/health/live", seconds=seconds),
                "r": lambda: wrk(base, seconds=seconds, script=read_script, headers=headers),
                "s": lambda: wrk(search, seconds=seconds, headers=headers),
            },
            rounds,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--scale", action="store_true", help="also run the search at 10k, 100k and 1M Observations")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of (a, r, s)")
    parser.add_argument("--no-audit", action="store_true", help="turn read auditing off (GATEWAY_AUDIT_READS=0)")
    args = parser.parse_args()
    audit = not args.no_audit
    print(f"read auditing: {'on' if audit else 'off'}")
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        print("loading 100000 Observations across 1000 patients ...")
        patient, result_ids = build(db_path, 1000, 100)
        runs = measure(db_path, patient, result_ids, args.seconds, audit, args.rounds)
        print(f"{args.rounds} interleaved rounds of {args.seconds} s; ratios are medians of per-round ratios (range)")
        print(f"(a) trivial JSON route                 {statistics.median(runs['a']):9.1f} req/s")
        for key, label, target in (
            ("r", "GET Observation/{id} (patient)", 0.40),
            ("s", "search patient, -date, _count=20", 0.20),
        ):
            mid, low, high = ratios(runs[key], runs["a"])
            print(
                f"({key}) {label:34} {statistics.median(runs[key]):9.1f} req/s   {key}/a = {mid:.3f} "
                f"({low:.3f}-{high:.3f})  (target >= {target:.2f})"
            )
        if not args.scale:
            return
        costs: dict[int, float] = {}
        for per_patient in (10, 100, 1000):
            path = Path(tmp) / f"scale-{per_patient}.db"
            total = 1000 * per_patient
            print(f"loading {total} Observations across 1000 patients ...")
            # The searched patient has 100 results at every size, so every page holds 20 entries and
            # only the store size changes (at 10 per patient the 10k page held 10 entries: half the work).
            patient, result_ids = build(path, 1000, per_patient, first_patient=max(per_patient, 100))
            scaled = measure(path, patient, result_ids[:50], args.seconds, audit, args.rounds)
            mid, _, _ = ratios(scaled["s"], scaled["a"])
            costs[total] = 1 / mid  # cost of one search in units of the trivial route, same rounds
            print(f"    {total:>8} Observations: search {statistics.median(scaled['s']):8.1f} req/s, s/a = {mid:.3f}")
            path.unlink()
        base_cost = costs[10_000]
        for total, cost in costs.items():
            print(f"search cost at {total:>8} = {cost / base_cost:.2f}x the cost at 10k   (target at 1M <= 1.5x)")


if __name__ == "__main__":
    main()
