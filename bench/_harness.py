"""Shared bench plumbing: a live uvicorn worker in its own process and wrk as the load generator.

Figures are ratios to a trivial JSON route measured in the same run on the same
machine, so they compare designs rather than machines.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "bench-master-key-0123456789abcdefghijkl"
APP_ID = "bench-app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (0 once it is gone), from ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (the serve process and the writer process it forks)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def processes_named(name: str) -> list[int]:
    """Every process whose command name is ``name`` (a local PostgreSQL server's processes)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


@contextmanager
def live_server(database_url: str, **env: str) -> Iterator[str]:
    """One uvicorn worker serving the app on a free port; yields the base URL."""
    with live_process(database_url, **env) as (base, _pid):
        yield base


@contextmanager
def live_process(database_url: str, **env: str) -> Iterator[tuple[str, int]]:
    """``live_server``, yielding the server's process id too (for the CPU it uses)."""
    port = free_port()
    environ = dict(
        os.environ,
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_MASTER_KEY=MASTER_KEY,
        GATEWAY_APP_ID=APP_ID,
        GATEWAY_HTTP_PORT=str(port),
        GATEWAY_MLLP_PORT="0",
        GATEWAY_LOG_LEVEL="WARNING",
    )
    environ.update(env)  # e.g. GATEWAY_MLLP_PORT for the HL7 bench
    exe = str(Path(sys.executable).parent / "portal-gateway")
    # The server's log goes to a file, not a pipe: nobody reads a pipe while the load runs, and a
    # server that logs more than its buffer (64 KiB) would block on the write and stall the figure.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [exe, "serve"], env=environ, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=log
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(base + "/health/ready", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.2)
            else:
                proc.kill()
                proc.wait(10)
                log.seek(0)
                raise RuntimeError("server did not become ready: " + log.read()[-4000:].decode(errors="replace"))
            yield base, proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


def wrk(
    url: str, *, seconds: int, connections: int = 16, script: str | None = None, headers: dict[str, str] | None = None
) -> float:
    """Requests/s reported by wrk (one thread: the other core is the server's)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required: apt-get install wrk")
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    script_path = None
    if script:
        fd, script_path = tempfile.mkstemp(suffix=".lua")
        os.write(fd, script.encode())
        os.close(fd)
        cmd += ["-s", script_path]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if script_path:
        os.unlink(script_path)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"!! {url}: {non2xx.group(1)} error responses: this figure does not count", file=sys.stderr)
        return 0.0
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(out)
    return float(match.group(1))


def interleaved(loads: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run every load once per round, in turn, for ``rounds`` rounds.

    A shared or frequency-scaled machine drifts by tens of percent within a minute; a
    ratio whose numerator and baseline come from the same round, taken as the median over
    rounds, drifts far less than one taken from a single baseline measured earlier."""
    out: dict[str, list[float]] = {name: [] for name in loads}
    for _ in range(rounds):
        for name, load in loads.items():
            out[name].append(load())
    return out


def ratios(values: list[float], baseline: list[float]) -> tuple[float, float, float]:
    """(median, lowest, highest) of the per-round ratios ``values[i] / baseline[i]``."""
    per_round = sorted(v / b for v, b in zip(values, baseline, strict=True) if b)
    return statistics.median(per_round), per_round[0], per_round[-1]
