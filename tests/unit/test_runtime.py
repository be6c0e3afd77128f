"""``serve``'s garbage-collector tuning (``gateway.runtime``): frozen start-up objects, rarer young passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.runtime import YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_gc_freezes_startup_objects_and_raises_the_young_threshold(
    restore_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_GC_YOUNG", raising=False)
    gc.unfreeze()
    older = gc.get_threshold()[1:]
    assert tune_gc() == (YOUNG_THRESHOLD, *older)
    assert gc.get_freeze_count() > 1000  # modules, SQLAlchemy metadata, ... are out of the scans


def test_zero_keeps_the_interpreter_threshold(restore_gc: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_GC_YOUNG", "0")
    gc.set_threshold(700, 10, 10)
    assert tune_gc() == (700, 10, 10)
