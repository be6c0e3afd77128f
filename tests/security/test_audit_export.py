"""``portal-gateway audit export --since DATE``: NDJSON of valid FHIR AuditEvents, and the export is audited."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent

from gateway.audit.verify import verify_chain

EXE = str(Path(sys.executable).parent / "portal-gateway")


def _run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GATEWAY_DATABASE_URL=url)
    return subprocess.run([EXE, "audit", "export", *args], env=env, capture_output=True, text=True)


async def test_export_writes_every_entry_as_an_audit_event(demo_database: Any, tmp_path: Path) -> None:
    url, _ = demo_database
    before = await verify_chain(url)
    out = tmp_path / "audit.ndjson"
    done = await asyncio.to_thread(_run, url, "--since", "2000-01-01", "--output", str(out))
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == before.checked and f"exported {before.checked} AuditEvent(s)" in done.stderr
    events = [json.loads(line) for line in lines]
    for event in events:
        AuditEvent.model_validate(event)
        assert event["resourceType"] == "AuditEvent" and event["recorded"] and event["agent"]
    after = await verify_chain(url)
    assert after.ok and after.checked == before.checked + 1  # the export itself is recorded


async def test_export_since_a_later_instant_and_to_stdout(demo_database: Any) -> None:
    url, _ = demo_database
    done = await asyncio.to_thread(_run, url, "--since", "2999-01-01T00:00:00Z")
    assert done.returncode == 0 and done.stdout == "" and "exported 0" in done.stderr


async def test_bad_since_is_a_usage_error(demo_database: Any) -> None:
    url, _ = demo_database
    done = await asyncio.to_thread(_run, url, "--since", "last tuesday")
    assert done.returncode == 2 and "--since" in done.stderr and "Traceback" not in done.stderr
