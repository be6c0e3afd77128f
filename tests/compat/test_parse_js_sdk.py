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
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def node_bin() -> str:
    """Checked before any server starts, so a machine without Node skips at once."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Parse JS SDK compatibility suite needs Node.js")
    if not (COMPAT_DIR / "node_modules" / "parse").is_dir():
        pytest.skip("tests/compat/node_modules is missing: run `npm ci` in tests/compat")
    return node


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


@pytest.fixture(params=BACKENDS)
def compat_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL for one backend (migrations and seed come from the CLI)."""
    if request.param == "sqlite":
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
    env.update({
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
    })
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


@pytest.fixture
def live_server(node_bin: str, compat_database_url: str, tmp_path: Path) -> Iterator[str]:
    """``portal-gateway serve`` as a real subprocess on a migrated, demo-seeded store; yields its base URL."""
    port = _free_port()
    env = _server_env(tmp_path, compat_database_url, port)
    _run_cli(["db", "upgrade", "--database-url", compat_database_url], env, tmp_path)
    _run_cli(["seed", "--demo", "--database-url", compat_database_url], env, tmp_path)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*_cli(), "serve", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _report(output: str) -> tuple[list[dict[str, object]], dict[str, object] | None]:
    checks: list[dict[str, object]] = []
    summary = None
    for line in output.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "check" in item:
            checks.append(item)
        elif isinstance(item, dict) and "summary" in item:
            summary = item["summary"]
    return checks, summary


def test_parse_js_sdk_suite(node_bin: str, live_server: str, tmp_path: Path) -> None:
    node = node_bin
    env = {
        **os.environ,
        "PARSE_SERVER_URL": f"{live_server}/parse",
        "PARSE_APP_ID": APP_ID,
        "PARSE_MASTER_KEY": MASTER_KEY,
    }
    done = subprocess.run(
        [node, str(SUITE)], env=env, cwd=COMPAT_DIR, capture_output=True, text=True, timeout=SUITE_TIMEOUT,
    )
    checks, summary = _report(done.stdout)
    failed = [c for c in checks if not c.get("ok")]
    if done.returncode != 0 or failed or summary is None:
        server_log = tmp_path / "server.log"
        lines = "\n".join(json.dumps(c) for c in failed)
        pytest.fail(
            f"Parse JS SDK suite exited {done.returncode}; {len(failed)} of {len(checks)} checks failed:\n{lines}\n"
            f"--- node stdout ---\n{done.stdout}\n--- node stderr ---\n{done.stderr}\n"
            f"--- server log (tail) ---\n{server_log.read_text()[-8000:] if server_log.exists() else ''}"
        )
    assert checks, "the suite ran no checks"
