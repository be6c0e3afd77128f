"""Existence and timing oracles (catalog H03, B09): forbidden must look and time like absent."""

from __future__ import annotations

import statistics
import time

from tests.api_support import Api, pointer

TRIALS = 60


async def _timed(coro_factory: object) -> float:
    start = time.perf_counter()
    await coro_factory()  # type: ignore[operator]
    return time.perf_counter() - start


def _close(a: list[float], b: list[float]) -> bool:
    """Medians within 25% or 0.5 ms of each other: no difference worth measuring at this scale."""
    ma, mb = statistics.median(a), statistics.median(b)
    return abs(ma - mb) <= max(0.25 * max(ma, mb), 0.0005)


async def test_forbidden_and_missing_records_are_indistinguishable(demo: Api) -> None:
    r = await demo.post(
        "/parse/classes/LabResult",
        {"patient": pointer("PatientProfile", demo.ids["alice:patient"]), "testCode": "x", "status": "final"},
        "smith",
    )
    hidden = r.json()["objectId"]
    forbidden = await demo.get(f"/parse/classes/LabResult/{hidden}", "bob")
    missing = await demo.get("/parse/classes/LabResult/AbCdEfGhIj", "bob")
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.content == missing.content
    drop = {"date", "x-request-id", "content-length"}
    assert {k: v for k, v in forbidden.headers.items() if k not in drop} == {
        k: v for k, v in missing.headers.items() if k not in drop
    }
    t_forbidden: list[float] = []
    t_missing: list[float] = []
    for _ in range(TRIALS):
        t_forbidden.append(await _timed(lambda: demo.get(f"/parse/classes/LabResult/{hidden}", "bob")))
        t_missing.append(await _timed(lambda: demo.get("/parse/classes/LabResult/AbCdEfGhIj", "bob")))
    assert _close(t_forbidden, t_missing), (statistics.median(t_forbidden), statistics.median(t_missing))


async def test_login_timing_does_not_reveal_usernames(demo: Api) -> None:
    t_known: list[float] = []
    t_unknown: list[float] = []
    for _ in range(TRIALS // 2):
        t_known.append(
            await _timed(lambda: demo.post("/parse/login", {"username": "alice@example.org", "password": "wrong"}))
        )
        t_unknown.append(
            await _timed(lambda: demo.post("/parse/login", {"username": "nobody@example.org", "password": "wrong"}))
        )
    assert _close(t_known, t_unknown), (statistics.median(t_known), statistics.median(t_unknown))
