"""HL7 v2 ingest, this checkout against another revision, side by side: is a change faster?

On a shared two-core machine the rate of the same code moves by a quarter between runs of
``hl7_ingest.py`` (other tenants, the disk), so two runs a few minutes apart cannot tell a 5% change
from the weather. Here both servers run at once, each on a fresh store of its own, and are driven
in alternating slices (``hl7_ingest.interleaved``), so the load each meets is the same; each round
prints both rates, their ratio and each side's CPU a message (serve and writer processes), and the
last line the ratio over all rounds. Identical code on both sides has measured within about 6% over
3 rounds of 8 s at 8 connections; a single short round varies more (0.89 in one 4 s round, 1 connection).

The base revision is checked out with ``git worktree`` into a temporary directory and its server
runs from there (``PYTHONPATH``) with this checkout's interpreter and packages, so a base whose
dependencies differ must be compared otherwise.

Usage: .venv/bin/python bench/hl7_ab.py BASE_REV [--backend sqlite|postgresql] [--connections 8]
                                        [--seconds 8] [--rounds 3]
                                        [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hl7_ingest import CPU_PARTS, _analyze, _postgres_database, gateway_server, interleaved

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def _worktree(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


@contextlib.contextmanager
def _store(backend: str, admin_url: str, tmp: str, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{Path(tmp) / name}.db"
    else:
        with _postgres_database(admin_url, suffix=name) as url:
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the revision to compare against (a commit, tag or branch)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8, help="per round and server, in 4 alternating slices")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        code = stack.enter_context(_worktree(args.base))
        url_a = stack.enter_context(_store(args.backend, args.postgres, tmp, "base"))
        url_b = stack.enter_context(_store(args.backend, args.postgres, tmp, "head"))
        a = stack.enter_context(gateway_server(url_a, PYTHONPATH=str(code)))
        b = stack.enter_context(gateway_server(url_b))
        interleaved([a, b], args.connections, 2, 1, "abwarm", args.patients, 1)  # every patient exists
        if args.backend == "postgresql":  # as hl7_ingest does: a running store has planner statistics
            _analyze(url_a)
            _analyze(url_b)
        totals = [0.0, 0.0]
        for r in range(args.rounds):
            order = [a, b] if r % 2 == 0 else [b, a]  # neither side always goes first
            rates, usages = interleaved(order, args.connections, args.seconds, 1, f"ab{r}", args.patients, 4)
            if r % 2:
                rates, usages = rates[::-1], usages[::-1]
            totals = [totals[0] + rates[0], totals[1] + rates[1]]
            cpu = [" ".join(f"{p} {u.per_message(p):.2f}" for p in CPU_PARTS[:2]) for u in usages]
            print(
                f"round {r}: base {rates[0]:.1f} head {rates[1]:.1f} msg/s, head/base {rates[1] / rates[0]:.3f}; "
                f"CPU ms a message: base {cpu[0]}, head {cpu[1]}",
                flush=True,
            )
    print(
        f"{args.backend}, {args.connections} connection(s), {args.base} against this checkout: "
        f"{totals[0] / args.rounds:.1f} -> {totals[1] / args.rounds:.1f} msg/s, {totals[1] / totals[0]:.3f}x"
    )


if __name__ == "__main__":
    main()
