"""Object ids. Random ones: Parse's shape, every character uniform over [A-Za-z0-9], no repeats."""

from __future__ import annotations

import random
import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.store.ids import (
    CLUSTERED_ID_LENGTH,
    OBJECT_ID_LENGTH,
    SEQUENTIAL_ID_LENGTH,
    clustered_object_id,
    derived_object_id,
    is_valid_object_id,
    new_object_id,
    sequential_object_id,
)

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


def test_sequential_ids_sort_as_their_numbers_and_never_look_random() -> None:
    numbers = [0, 1, 9, 10, 35, 36, 37, 1295, 1296, 10**9, 36**11 - 1, *random.Random(3).sample(range(10**12), 500)]
    ids = [sequential_object_id(n) for n in numbers]
    assert all(len(i) == SEQUENTIAL_ID_LENGTH and is_valid_object_id(i) for i in ids)
    assert sorted(ids) == [sequential_object_id(n) for n in sorted(numbers)], "text order is number order"
    assert [int(i, 36) for i in ids] == numbers
    assert SEQUENTIAL_ID_LENGTH != OBJECT_ID_LENGTH, "disjoint from random ids in the same table"
    for bad in (-1, 36**11):
        with pytest.raises(ValueError):
            sequential_object_id(bad)


def test_clustered_ids_share_their_cluster_prefix_and_stay_distinct() -> None:
    """A cluster's rows share their first five characters (so they sit together in an index), ids
    are deterministic, distinct across 200 clusters of 60 keys, and never the length of a random
    or derived id (so the feed's pre-clustering rows are told apart by length alone)."""
    clusters = [("LabResult", "LAB A", f"ORDER-{n}") for n in range(200)]
    ids = {c: [clustered_object_id(c, f"key-{k}") for k in range(60)] for c in clusters}
    flat = [i for group in ids.values() for i in group]
    assert len(set(flat)) == len(flat)
    assert all(len(i) == CLUSTERED_ID_LENGTH != OBJECT_ID_LENGTH and is_valid_object_id(i) for i in flat)
    assert all(len({i[:5] for i in group}) == 1 for group in ids.values())
    assert len({group[0][:5] for group in ids.values()}) == len(clusters)
    assert clustered_object_id(clusters[0], "key-0") == ids[clusters[0]][0]
    # the key half depends on the cluster too: the same key in two orders is two results
    assert clustered_object_id(clusters[0], "k")[5:] != clustered_object_id(clusters[1], "k")[5:]
    assert len(derived_object_id("LabResult", "LAB A", "key-0")) == OBJECT_ID_LENGTH


def test_derived_ids_never_change() -> None:
    """Derived ids are how a resent or corrected message finds the rows it made (a LabResult, a
    provider, a patient): values written by every earlier version of the store, pinned, so that
    making them faster can never make them different."""
    from gateway.hl7v2.apply import _result_id

    assert derived_object_id("LabResult", "LAB A", "key-0") == "jLSRLWtJi4"
    assert derived_object_id("ProviderProfile", "NPI", "1234567893") == "x7WzohnlWQ"
    assert derived_object_id("PatientProfile", "Hôpital Saint-Éloi", "NW-000042") == "p7C8kWIqio"
    assert clustered_object_id(("LabResult", "LAB A", "ORDER-1"), "key-0") == "a8oxltOuqx1"
    assert _result_id("NORTHWIND LAB", ("FL-1^NWLAB", "2345-7", "LN", "")) == "CJjNxz1Y7Yw"
    assert _result_id("Laboratoire Öst", ("Ω-77", "718-7", "LN", "1.2")) == "C1pr6BvbDUl"


_KEY_PART = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.tuples(_KEY_PART, _KEY_PART, _KEY_PART, _KEY_PART), st.integers(1, 32))
def test_fast_id_derivations_equal_their_definitions(key: tuple[str, str, str, str], count: int) -> None:
    """``key_id_text`` is ``str(uuid5(...))`` and ``_digest_chars`` maps each digest byte to the
    alphabet by ``% 62``, over any text (non-ASCII, separators inside parts, empty parts)."""
    import hashlib
    import uuid

    from gateway.store.ids import _digest_chars
    from mappings.hl7v2.drafts import RESULT_NAMESPACE, key_id_of, key_id_text

    assert key_id_text(key) == str(key_id_of(key)) == str(uuid.uuid5(RESULT_NAMESPACE, "|".join(key)))
    digest = hashlib.sha256("\x1f".join(key).encode()).digest()
    assert _digest_chars(key, count) == "".join(ALPHABET[b % 62] for b in digest[:count])
