"""Signed checkpoints catch what the chain alone cannot (catalog G03): truncation with the head moved,
history rewritten with every later hash recomputed, an old backup restored; the CLI, the schedule in
``serve``'s app and the public endpoints an outside verifier uses."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.audit import checkpoints as cps
from gateway.audit.verify import _hashed_values, verify_chain
from gateway.audit.writer import AuditAction, AuditEntry, append, entry_hash
from gateway.policy.principal import system
from gateway.signing_keys import KeyRing
from gateway.store.database import Database
from gateway.store.engine import create_engine
from gateway.store.models import AuditHead, AuditLog, table_of
from tests.api_support import make_settings

EXE = str(Path(sys.executable).parent / "portal-gateway")
_log = table_of(AuditLog)
_head = table_of(AuditHead)


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    return KeyRing(tmp_path / "signing-key.pem")


async def _checkpoint(url: str, keys: KeyRing, folder: Path) -> cps.Checkpoint:
    db = Database(url)
    try:
        written = await cps.checkpoint_now(db, keys, folder, issuer="http://testserver.local")
    finally:
        await db.dispose()
    assert written is not None
    return written


async def _append(url: str, n: int) -> None:
    db = Database(url)
    try:
        for i in range(n):
            async with db.write() as conn:
                await append(conn, AuditEntry(AuditAction.EXECUTE, system("test"), summary=f"more {i}"))
    finally:
        await db.dispose()


async def _truncate_with_head(url: str, keep: int) -> None:
    """An insider removes the tail and moves ``_AuditHead`` back so the chain alone looks whole."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(_log.delete().where(_log.c.seq > keep))
        last = (await conn.execute(select(_log.c.hash).where(_log.c.seq == keep))).scalar_one()
        await conn.execute(_head.update().where(_head.c.id == 1).values(seq=keep, hash=last))
    await engine.dispose()


async def _rewrite_from(url: str, seq: int) -> None:
    """An insider edits entry ``seq`` and recomputes every later hash and the head."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        rows = (await conn.execute(select(_log).where(_log.c.seq >= seq).order_by(_log.c.seq))).all()
        prev = (await conn.execute(select(_log.c.hash).where(_log.c.seq == seq - 1))).scalar_one()
        final: dict[int, str] = {}
        for row in rows:
            values = _hashed_values(row)
            values["prevHash"] = prev
            if row.seq == seq:
                values["summary"] = "nothing happened here"
            final[row.seq] = prev = entry_hash(values)
            # A placeholder first: the unique constraint on hash forbids swapping values in place.
            placeholder = hashlib.sha256(f"tmp{row.seq}".encode()).hexdigest()
            await conn.execute(
                _log.update()
                .where(_log.c.seq == row.seq)
                .values(summary=values["summary"], prevHash=values["prevHash"], hash=placeholder)
            )
        for row_seq, digest in final.items():
            await conn.execute(_log.update().where(_log.c.seq == row_seq).values(hash=digest))
        await conn.execute(_head.update().where(_head.c.id == 1).values(seq=rows[-1].seq, hash=prev))
    await engine.dispose()


async def test_intact_chain_extends_its_checkpoints(demo_database: Any, keys: KeyRing, tmp_path: Path) -> None:
    url, _ = demo_database
    folder = tmp_path / "cp"
    first = await _checkpoint(url, keys, folder)
    await _append(url, 3)
    second = await _checkpoint(url, keys, folder)
    assert second.seq == first.seq + 3
    found = cps.load_all(keys, folder)
    assert [c.seq for c in found] == [first.seq, second.seq]
    result = await verify_chain(url, found)
    assert result.ok and result.checkpoints == 2


async def test_no_new_checkpoint_when_the_head_did_not_move(demo_database: Any, keys: KeyRing, tmp_path: Path) -> None:
    url, _ = demo_database
    await _checkpoint(url, keys, tmp_path)
    db = Database(url)
    try:
        assert await cps.checkpoint_now(db, keys, tmp_path, issuer="x") is None
    finally:
        await db.dispose()
    assert len(cps.files(tmp_path)) == 1


async def test_truncation_with_the_head_moved_is_caught_only_by_the_checkpoint(
    demo_database: Any, keys: KeyRing, tmp_path: Path
) -> None:
    url, _ = demo_database
    cp = await _checkpoint(url, keys, tmp_path)
    await _truncate_with_head(url, cp.seq - 4)
    assert (await verify_chain(url)).ok  # the chain alone cannot tell
    result = await verify_chain(url, cps.load_all(keys, tmp_path))
    assert not result.ok and result.bad_seq == cp.seq
    assert f"chain does not extend checkpoint seq={cp.seq}" in (result.reason or "")


async def test_rewritten_history_is_caught_by_the_checkpoint(demo_database: Any, keys: KeyRing, tmp_path: Path) -> None:
    url, _ = demo_database
    cp = await _checkpoint(url, keys, tmp_path)
    await _rewrite_from(url, 5)
    assert (await verify_chain(url)).ok  # every hash was recomputed
    result = await verify_chain(url, cps.load_all(keys, tmp_path))
    assert not result.ok and f"seq={cp.seq}" in (result.reason or "") and "rewritten" in (result.reason or "")


async def test_restored_old_backup_is_caught(backend: str, demo_database: Any, keys: KeyRing, tmp_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("file-level backup and restore is the SQLite case; truncation covers the rest")
    url, _ = demo_database
    path = Path(url.split(":///", 1)[1])
    backup = tmp_path / "backup.db"
    source, target = sqlite3.connect(path), sqlite3.connect(backup)
    source.backup(target)
    source.close()
    target.close()
    await _append(url, 2)
    cp = await _checkpoint(url, keys, tmp_path / "cp")

    def restore() -> None:
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        shutil.copy(backup, path)

    await asyncio.to_thread(restore)
    result = await verify_chain(url, cps.load_all(keys, tmp_path / "cp"))
    assert not result.ok and f"chain does not extend checkpoint seq={cp.seq}" in (result.reason or "")


async def test_forged_or_edited_checkpoints_are_refused(demo_database: Any, keys: KeyRing, tmp_path: Path) -> None:
    url, _ = demo_database
    cp = await _checkpoint(url, keys, tmp_path)
    other = KeyRing(tmp_path / "attacker.pem")
    forged = cps.sign(other, cp.seq, "0" * 64, issuer="x")
    with pytest.raises(cps.CheckpointError, match="unknown key"):
        cps.verified(keys, forged.jws)
    [path] = cps.files(tmp_path)
    data = json.loads(path.read_text())
    data["hash"] = "f" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(cps.CheckpointError, match="differ from what its signature covers"):
        cps.load_all(keys, tmp_path)
    header, payload, signature = cp.jws.split(".")
    data["jws"] = ".".join([header, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), signature])
    path.write_text(json.dumps(data))
    with pytest.raises(cps.CheckpointError):
        cps.load_all(keys, tmp_path)


async def test_public_endpoints_let_an_outsider_verify(demo_database: Any, tmp_path: Path) -> None:
    url, _ = demo_database
    settings = make_settings(url, signing_key_file=str(tmp_path / "key.pem"), audit_checkpoint_dir=str(tmp_path / "cp"))
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        r = await client.get("/audit/checkpoints/latest")
        assert r.status_code == 404
        await _checkpoint(url, KeyRing(settings.signing_key_file), tmp_path / "cp")
        latest = (await client.get("/audit/checkpoints/latest")).json()
        jwks = (await client.get("/audit/checkpoints/keys")).json()
    assert all("d" not in k for k in jwks["keys"])  # public halves only
    signed = jws.deserialize_compact(latest["jws"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    payload = json.loads(signed.payload)
    result = await verify_chain(url)
    assert (payload["seq"], payload["hash"]) == (result.checked, result.head_hash)


async def test_serve_writes_checkpoints_on_a_schedule(demo_database: Any, tmp_path: Path) -> None:
    url, _ = demo_database
    settings = make_settings(
        url,
        signing_key_file=str(tmp_path / "key.pem"),
        audit_checkpoint_dir=str(tmp_path / "cp"),
        audit_checkpoint_seconds=1,
    )
    async with AsyncTestClient(app=create_app(settings, checkpoints=True), base_url="http://testserver.local"):
        for _ in range(50):
            if cps.files(tmp_path / "cp"):
                break
            await asyncio.sleep(0.1)
    [path] = cps.files(tmp_path / "cp")
    assert cps.load(KeyRing(settings.signing_key_file), path).seq == (await verify_chain(url)).checked


async def test_cli_checkpoint_and_verify(demo_database: Any, tmp_path: Path) -> None:
    url, _ = demo_database
    env = dict(
        os.environ,
        GATEWAY_DATABASE_URL=url,
        GATEWAY_SIGNING_KEY_FILE=str(tmp_path / "key.pem"),
        GATEWAY_AUDIT_CHECKPOINT_DIR=str(tmp_path / "cp"),
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([EXE, "audit", *args], env=env, capture_output=True, text=True)

    made = await asyncio.to_thread(run, "checkpoint")
    assert made.returncode == 0 and "checkpoint seq=" in made.stdout, made.stderr
    ok = await asyncio.to_thread(run, "verify")
    assert ok.returncode == 0 and "extends 1 signed checkpoint" in ok.stdout, ok.stderr
    seq = int(made.stdout.split("seq=")[1].split()[0])
    await _truncate_with_head(url, seq - 2)
    bad = await asyncio.to_thread(run, "verify")
    assert bad.returncode == 1 and f"chain does not extend checkpoint seq={seq}" in bad.stderr


async def test_a_clean_stop_writes_a_last_checkpoint(demo_database: Any, tmp_path: Path) -> None:
    url, _ = demo_database
    settings = make_settings(
        url,
        signing_key_file=str(tmp_path / "key.pem"),
        audit_checkpoint_dir=str(tmp_path / "cp"),
        audit_checkpoint_seconds=3600,
    )
    async with AsyncTestClient(app=create_app(settings, checkpoints=True), base_url="http://testserver.local"):
        for _ in range(50):
            if cps.files(tmp_path / "cp"):
                break
            await asyncio.sleep(0.1)
        await _append(url, 2)
    keys = KeyRing(settings.signing_key_file)
    found = cps.load_all(keys, tmp_path / "cp")
    assert len(found) == 2 and found[1].seq == found[0].seq + 2
    assert (await verify_chain(url, found)).ok


async def test_a_checkpoint_of_another_database_is_named_as_such(
    demo_database: Any, keys: KeyRing, tmp_path: Path
) -> None:
    """A checkpoint whose chain starts with another entry fails verify, saying which of the two it may be."""
    url, _ = demo_database
    cp = await _checkpoint(url, keys, tmp_path / "cp")
    foreign = cps.sign(keys, cp.seq, cp.hash, issuer="http://elsewhere", first="e" * 64)
    result = await verify_chain(url, [foreign])
    assert not result.ok and "another database" in (result.reason or "") and "elsewhere" in (result.reason or "")
    assert (await verify_chain(url, cps.load_all(keys, tmp_path / "cp"))).ok


async def test_checkpoint_verifies_after_its_key_left_the_jwks(database_url: str, tmp_path: Path) -> None:
    """Key rotation drops an old key from the JWKS once its tokens expired, but a checkpoint it signed
    must stay verifiable: the retired public key stays on file however many rotations follow."""
    key_file = tmp_path / "signing-key.pem"
    folder = tmp_path / "checkpoints"
    await _append(database_url, 2)
    first = await _checkpoint(database_url, KeyRing(key_file), folder)
    ring = KeyRing(key_file, overlap_seconds=0)  # nothing stays published after retirement
    ring.rotate()
    ring.rotate()
    assert first.kid not in {k["kid"] for k in ring.jwks()["keys"]}
    reloaded = KeyRing(key_file)
    assert [c.seq for c in cps.load_all(reloaded, folder)] == [first.seq]
    assert first.kid in {k["kid"] for k in reloaded.archive_jwks()["keys"]}, "outside verifiers still get it"
