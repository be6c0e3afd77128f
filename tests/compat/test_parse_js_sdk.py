"""The official Parse JavaScript SDK (npm ``parse``) against a live gateway, on SQLite and PostgreSQL.

For each backend: a fresh migrated database with the demo data, a real ``portal-gateway serve``
subprocess on a free port, then ``node tests/compat/sdk_suite.mjs`` pointed at it. The Node
script prints one JSON line per check and exits non-zero when any check fails.

Skipped only when ``node`` is not installed or ``tests/compat/node_modules`` is missing
(``cd tests/compat && npm ci`` installs the SDK from the committed package-lock.json).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

COMPAT_DIR = Path(__file__).resolve().parent
REPO_ROOT = COMPAT_DIR.parent.parent
SUITE = COMPAT_DIR / "sdk_suite.mjs"
BIN_DIR = Path(sys.executable).parent
PORTAL_GATEWAY = BIN_DIR / "portal-gateway"

APP_ID = "compat-app"
MASTER_KEY = "compat-master-key-" + "0123456789abcdefghijklmnopqrstuv"
PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

SERVER_START_TIMEOUT = 30.0
SUITE_TIMEOUT = 120.0

pytestmark = pytest.mark.compat


def _node() -> str | None:
    node = shutil.which("node")
    if node is None or not (COMPAT_DIR / "node_modules" / "parse").is_dir():
        return None
    return node


SKIP_REASON = (
    "node is not installed: the Parse JS SDK compatibility suite needs Node.js"
    if shutil.which("node") is None
    else "tests/compat/node_modules is missing: run `npm ci` in tests/compat"
)


def _check_names() -> list[str]:
    """The suite's check names in run order (``node sdk_suite.mjs --list``); empty when it cannot run."""
    node = _node()
    if node is None:
        return []
    global LIST_ERROR
    try:
        done = subprocess.run([node, str(SUITE), "--list"], cwd=COMPAT_DIR, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
        return [json.loads(line)["check"] for line in done.stdout.splitlines() if line.strip()]
    except (OSError, RuntimeError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        # never break collection of the whole test run: the suite test reports it instead
        LIST_ERROR = f"node sdk_suite.mjs --list failed: {exc}"
        return []


LIST_ERROR: str | None = None
CHECK_NAMES = _check_names()

KNOWN_FAILURES: dict[str, str] = {}
"""check name -> reason: server bugs still open when this file was last changed (xfail, strict)."""


def _cli() -> list[str]:
    if PORTAL_GATEWAY.exists():
        return [str(PORTAL_GATEWAY)]
    return [sys.executable, "-m", "gateway.cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_admin(statement: str) -> None:
    """Run one statement outside a transaction on the server named by GATEWAY_TEST_DATABASE_URL."""
    import asyncio

    from sqlalchemy import text

    from gateway.store.engine import create_engine

    async def run() -> None:
        engine = create_engine(PG_URL)
        try:
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@contextmanager
def _fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL for one backend (migrations and seed come from the CLI)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'compat.db'}"
        return
    name = "compat_" + uuid.uuid4().hex[:12]
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _server_env(tmp_path: Path, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_MASTER_KEY": MASTER_KEY,
            "GATEWAY_APP_ID": APP_ID,
            "GATEWAY_MLLP_PORT": "0",
            "GATEWAY_HTTP_HOST": "127.0.0.1",
            "GATEWAY_HTTP_PORT": str(port),
            "GATEWAY_BASE_URL": f"http://127.0.0.1:{port}",
            "GATEWAY_SIGNING_KEY_FILE": str(tmp_path / "var" / "signing-key.pem"),
            "GATEWAY_FILES_DIR": str(tmp_path / "var" / "files"),
            "GATEWAY_AUDIT_CHECKPOINT_DIR": str(tmp_path / "var" / "audit-checkpoints"),
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
    )
    return env


def _run_cli(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run([*_cli(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"portal-gateway {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def _wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited with {server.returncode} before it was ready:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"server not ready after {SERVER_START_TIMEOUT}s:\n{log.read_text()}")


@contextmanager
def _live_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """``portal-gateway serve`` as a real subprocess on a migrated, demo-seeded store; yields its base URL."""
    port = _free_port()
    env = _server_env(tmp_path, database_url, port)
    _run_cli(["db", "upgrade", "--database-url", database_url], env, tmp_path)
    _run_cli(["seed", "--demo", "--database-url", database_url], env, tmp_path)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*_cli(), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, server, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@dataclass
class SuiteRun:
    backend: str
    returncode: int
    stdout: str
    stderr: str
    server_log: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None

    def server_errors(self) -> str:
        """The server's own error lines (tracebacks included), for a failure message."""
        keep = [ln for ln in self.server_log.splitlines() if "ERROR" in ln or "Error" in ln or "error" in ln]
        return "\n".join(keep[-40:])


@pytest.fixture(scope="module", params=BACKENDS)
def sdk_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRun]:
    """One live server and one run of the whole Node suite per backend; every check test reads its result."""
    node = _node()
    if node is None:
        pytest.skip(SKIP_REASON)
    if LIST_ERROR is not None:
        pytest.fail(LIST_ERROR)
    backend = str(request.param)
    tmp_path = tmp_path_factory.mktemp(f"compat-{backend}")
    with _fresh_database(backend, tmp_path) as url, _live_server(url, tmp_path) as base:
        env = {
            **os.environ,
            "PARSE_SERVER_URL": f"{base}/parse",
            "PARSE_APP_ID": APP_ID,
            "PARSE_MASTER_KEY": MASTER_KEY,
        }
        done = subprocess.run(
            [node, str(SUITE)], env=env, cwd=COMPAT_DIR, capture_output=True, text=True, timeout=SUITE_TIMEOUT
        )
    run = SuiteRun(backend, done.returncode, done.stdout, done.stderr, (tmp_path / "server.log").read_text())
    for line in done.stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "check" in item:
            run.checks[str(item["check"])] = item
        elif isinstance(item, dict) and "summary" in item:
            run.summary = item["summary"]
    yield run


def test_suite_ran_every_check(sdk_run: SuiteRun) -> None:
    """The Node process finished (exit 0, or 1 for failed checks) and reported every registered check."""
    assert sdk_run.returncode in (0, 1) and sdk_run.summary is not None, (
        f"sdk_suite.mjs crashed (exit {sdk_run.returncode}) on {sdk_run.backend}:\n"
        f"--- stdout ---\n{sdk_run.stdout}\n--- stderr ---\n{sdk_run.stderr}"
    )
    assert list(sdk_run.checks) == CHECK_NAMES
    failed = {n for n, c in sdk_run.checks.items() if not c.get("ok")}
    assert (sdk_run.returncode == 0) == (not failed)


def test_server_logged_no_traceback(sdk_run: SuiteRun) -> None:
    """Nothing the SDK sent made the server raise (an unhandled error is a 5xx, which the SDK retries)."""
    assert "Traceback" not in sdk_run.server_log, (
        f"the server raised during the SDK run on {sdk_run.backend}:\n{sdk_run.server_errors()}"
    )


def _param(name: str) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])] if name in KNOWN_FAILURES else []
    return pytest.param(name, id=re.sub(r"[^\w.+-]+", "_", name).strip("_"), marks=marks)


@pytest.mark.skipif(not CHECK_NAMES, reason=SKIP_REASON)
@pytest.mark.parametrize("check", [_param(n) for n in CHECK_NAMES] or [pytest.param("none", id="none")])
def test_parse_js_sdk(sdk_run: SuiteRun, check: str) -> None:
    """One SDK check (see sdk_suite.mjs) on one backend."""
    result = sdk_run.checks.get(check)
    assert result is not None, f"check {check!r} did not run on {sdk_run.backend}:\n{sdk_run.stderr}"
    if not result.get("ok"):
        detail = json.dumps(result.get("detail"), indent=2)
        hint = ""
        if isinstance(result.get("detail"), dict) and result["detail"].get("code") in (1, 100):
            hint = f"\n--- server errors ({sdk_run.backend}) ---\n{sdk_run.server_errors()}"
        pytest.fail(f"[{sdk_run.backend}] {check}: {detail}{hint}", pytrace=False)
