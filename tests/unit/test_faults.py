"""The crash points (gateway.faults) fire on exactly the configured arrival, and only there.

Run in a child interpreter: a fault that fires ends the process, which is what is checked.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.faults import CRASH_STATUS, FaultPoint

_PROBE = """
import sys
from gateway import faults
from gateway.faults import FaultPoint
for n in range(1, 6):
    for point in FaultPoint:
        faults.reached(point)
    print(n, flush=True)
"""


def _run(spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {"GATEWAY_FAULT": spec} if spec else {}
    return subprocess.run(
        [sys.executable, "-c", _PROBE], env=env | {"PATH": ""}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("point", list(FaultPoint))
def test_the_configured_arrival_ends_the_process(point: FaultPoint) -> None:
    done = _run(f"{point}:3")
    assert done.returncode == CRASH_STATUS
    assert done.stdout.split() == ["1", "2"], "two arrivals pass, the third dies before printing"


def test_unset_never_fires() -> None:
    done = _run(None)
    assert done.returncode == 0 and done.stdout.split() == ["1", "2", "3", "4", "5"]


def test_arm_replaces_the_point_after_import() -> None:
    from gateway import faults

    faults.arm("mid-ack:2")
    try:
        assert not faults.arrive(FaultPoint.COMMITTED)
        assert not faults.arrive(FaultPoint.MID_ACK)
        assert faults.arrive(FaultPoint.MID_ACK), "the second MID_ACK arrival is the fatal one"
    finally:
        faults.arm(None)
    assert not faults.arrive(FaultPoint.MID_ACK)


def test_an_unknown_point_is_refused() -> None:
    done = _run("after-lunch:1")
    assert done.returncode == 1 and "ValueError" in done.stderr
