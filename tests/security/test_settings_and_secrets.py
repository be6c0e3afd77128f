"""Master key hygiene (catalog B10) and errors/logs without health data or secrets (H02)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.settings import Settings, SettingsError
from tests.api_support import APP_ID, MASTER_KEY, Api, make_settings

EXE = str(Path(sys.executable).parent / "portal-gateway")


@pytest.mark.parametrize("key", ["", "myMasterKey", "masterKey", "short-but-random-1234"])
def test_weak_master_keys_refuse_to_start(key: str) -> None:
    with pytest.raises(SettingsError):
        Settings(master_key=key).checked()


def test_demo_mode_without_key_generates_a_strong_one() -> None:
    settings = Settings(master_key="", demo=True).checked()
    assert len(settings.master_key) >= 32


def test_serve_refuses_a_weak_master_key(tmp_path: Path) -> None:
    env = dict(
        os.environ, GATEWAY_MASTER_KEY="myMasterKey", GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db"
    )
    proc = subprocess.run([EXE, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "too weak" in proc.stderr
    assert "myMasterKey" not in proc.stderr + proc.stdout


def test_forwarded_for_is_ignored_without_trusted_proxy() -> None:
    from gateway.native.request import client_address

    class FakeRequest:
        headers = {"x-forwarded-for": "10.1.2.3"}

        class client:
            host = "127.0.0.1"

    assert client_address(FakeRequest(), Settings()) == "127.0.0.1"  # type: ignore[arg-type]
    trusted = Settings(trusted_proxies=("127.0.0.1",))
    assert client_address(FakeRequest(), trusted) == "10.1.2.3"  # type: ignore[arg-type]


async def test_master_key_and_tokens_never_in_responses_or_logs(demo: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    paths = ["/parse/users/me", "/parse/sessions", "/parse/classes/LabResult/none", "/parse/schemas"]
    bodies = []
    for path in paths:
        for who in ("alice", "smith"):
            r = await demo.get(path, who)
            bodies.append(r.text)
        bodies.append((await demo.get(path, master=True)).text)
    text = "\n".join(bodies) + caplog.text
    assert MASTER_KEY not in text
    assert demo.tokens["smith"] not in "\n".join(b for b in bodies if '"username":"alice' in b)
    assert "_hashed_password" not in text and "$argon2" not in text


async def test_unexpected_error_is_a_500_with_only_a_correlation_id(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force a driver-level failure carrying health data in its message; neither body nor log may echo it."""
    from gateway.records.service import Records

    async def broken(self: Records, *args: object, **kwargs: object) -> object:
        raise RuntimeError("UNIQUE constraint failed: [parameters: ('Alice Canary', 'MRN-CANARY-42')]")

    monkeypatch.setattr(Records, "get", broken)
    caplog.set_level(logging.INFO)
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app) as client:
        r = await client.get(
            "/parse/classes/LabResult/x", headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Request-Id": "req-123"}
        )
    assert r.status_code == 500
    assert r.json() == {"code": 1, "error": "Internal server error. Request id: req-123"}
    assert "CANARY" not in caplog.text and "Alice" not in caplog.text
    assert "RuntimeError" in caplog.text and "req-123" in caplog.text
