"""Starts ``portal-gateway serve`` processes quickly, for the thousand-restart crash test (D01).

A fresh ``portal-gateway serve`` spends about a second importing before it listens; a
thousand restarts would spend most of the test in imports. This process imports the
gateway once and then, per request, forks a child that runs the very same ``serve``
command (``gateway.cli.main``): migrations check, app, uvicorn, MLLP listener. The child
is killed (by its crash point or by the test's SIGKILL) like any server process.

Protocol, one JSON object a line on stdin, one answer a line on stdout:
``{"spawn": {env}}`` -> ``{"pid": N}``; ``{"wait": N}`` -> ``{"status": S}`` (the exit
status, or minus the signal number). It stays single-threaded so that fork is safe.
"""

from __future__ import annotations

import json
import os
import sys

import uvicorn  # noqa: F401  (imported before any fork: what the children would import)

import gateway.app
import gateway.cli
from gateway import faults


def _child(env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)
    faults.arm(env.get("GATEWAY_FAULT"))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        gateway.cli.main(["serve"], prog_name="portal-gateway", standalone_mode=False)
    finally:
        os._exit(0)


def main() -> None:
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        if "spawn" in request:
            out.flush()
            pid = os.fork()
            if pid == 0:
                _child(request["spawn"])
            answer = {"pid": pid}
        else:
            _, status = os.waitpid(int(request["wait"]), 0)
            answer = {"status": os.waitstatus_to_exitcode(status)}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
