"""``portal-gateway clients add|list|remove`` against a real SQLite store (migrated by the command)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from joserfc.jwk import RSAKey

from gateway.cli import main


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "GATEWAY_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
        "GATEWAY_FILES_DIR": str(tmp_path / "files"),
        "GATEWAY_AUDIT_CHECKPOINT_DIR": str(tmp_path / "cp"),
    }


def test_clients_add_list_remove(tmp_path: Path) -> None:
    runner = CliRunner()
    env = _env(tmp_path)
    r = runner.invoke(
        main,
        [
            "clients",
            "add",
            "viewer",
            "--redirect-uri",
            "https://app.example/cb",
            "--redirect-uri",
            "https://app.example/cb2",
            "--scope",
            "launch/patient patient/*.rs",
            "--public",
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        main,
        ["clients", "add", "conf", "--redirect-uri", "https://c.example/cb", "--scope", "user/*.rs", "--secret"],
        env=env,
    )
    assert r.exit_code == 0, r.output
    secret = r.output.strip().splitlines()[-1]
    assert len(secret) >= 40
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [RSAKey.generate_key(2048, private=True).as_dict(private=False)]}))
    r = runner.invoke(main, ["clients", "add", "ehr", "--scope", "system/*.rs", "--jwks-file", str(jwks)], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        main,
        [
            "clients",
            "add",
            "bad",
            "--scope",
            "patient/Observation.bogus",
            "--public",
            "--redirect-uri",
            "https://x.example/cb",
        ],
        env=env,
    )
    assert r.exit_code != 0 and "invalid scope" in r.output
    r = runner.invoke(
        main,
        ["clients", "add", "viewer", "--scope", "patient/*.rs", "--public", "--redirect-uri", "https://x.example/cb"],
        env=env,
    )
    assert r.exit_code != 0 and "already exists" in r.output
    r = runner.invoke(main, ["clients", "list"], env=env)
    assert r.exit_code == 0
    lines = r.output.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["conf", "ehr", "viewer"]
    assert secret not in r.output
    assert "https://app.example/cb,https://app.example/cb2" in r.output
    r = runner.invoke(main, ["clients", "remove", "viewer"], env=env)
    assert r.exit_code == 0
    r = runner.invoke(main, ["clients", "remove", "viewer"], env=env)
    assert r.exit_code != 0
