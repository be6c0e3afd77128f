"""Process-level tuning ``serve`` applies once the app is built.

CPython's cyclic garbage collector runs a young-generation pass every 700 net container
allocations and, every hundred of those, considers a full pass over every tracked object.
A list request with includes allocates thousands of dicts, and the process holds a few
hundred thousand long-lived objects (modules, SQLAlchemy metadata and compiled caches,
Litestar's routing): full passes over them cost a fifth of the CPU of such a request
(``bench/native_read.py``, measured with the collector on and off in one run). Two
standard remedies, both kept conservative:

* ``gc.freeze()`` after start-up moves everything built so far into a permanent
  generation that collections never scan (what it is documented for);
* a larger young-generation threshold makes passes rarer; request garbage is freed by
  reference counting anyway, cycles are rare on the read path, and a pass over more
  young objects still takes well under a millisecond.

Tests and the CLI's other commands keep the interpreter's defaults.
"""

from __future__ import annotations

import gc
import os

YOUNG_THRESHOLD = 20_000
"""Net container allocations between young-generation passes (CPython's default is 700)."""


def tune_gc() -> tuple[int, int, int]:
    """Freeze what start-up built and raise the young-generation threshold; returns the thresholds.

    ``GATEWAY_GC_YOUNG`` overrides the threshold (0 keeps the interpreter default)."""
    young = int(os.environ.get("GATEWAY_GC_YOUNG", YOUNG_THRESHOLD))
    gc.collect()
    gc.freeze()
    if young > 0:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(young, older, oldest)
    return gc.get_threshold()
