"""Random object ids: Parse's shape, every character uniform over [A-Za-z0-9], no repeats."""

from __future__ import annotations

import string
from collections import Counter

from gateway.store.ids import OBJECT_ID_LENGTH, is_valid_object_id, new_object_id

ALPHABET = string.ascii_letters + string.digits


def test_shape_and_uniqueness() -> None:
    ids = [new_object_id() for _ in range(20_000)]
    assert all(len(i) == OBJECT_ID_LENGTH and is_valid_object_id(i) and set(i) <= set(ALPHABET) for i in ids)
    assert len(set(ids)) == len(ids)


def test_characters_are_uniform() -> None:
    """Chi-square over 62 symbols (61 degrees of freedom): 120 is beyond the 99.999th percentile,
    while mapping bytes by ``% 62`` without rejecting 248..255 gives ~1.3x the share to the first 8
    symbols, which scores in the thousands at this sample size."""
    counts = Counter("".join(new_object_id() for _ in range(30_000)))
    expected = 30_000 * OBJECT_ID_LENGTH / len(ALPHABET)
    chi2 = sum((counts[c] - expected) ** 2 / expected for c in ALPHABET)
    assert chi2 < 120, chi2
