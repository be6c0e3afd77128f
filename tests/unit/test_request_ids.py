"""Request ids: uuid4-shaped, unique within a process and across a fork."""

from __future__ import annotations

import os
import re

from gateway.request_ids import new_request_id


def test_shape_and_uniqueness() -> None:
    ids = [new_request_id() for _ in range(50_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    before = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    after = new_request_id()
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != before[:16], "the child draws its own prefix"
    assert after[:16] == before[:16] and int(after[16:], 16) > int(before[16:], 16)
