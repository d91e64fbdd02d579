"""The pure-Python arithmetic coder over CompressAI-style 16-bit CDF tables."""

from __future__ import annotations

import math
import random
from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hecsb_ros.core.entropy.arith import decode_with_indexes, encode_with_indexes


def _table(rng: random.Random, values: int) -> list[int]:
    """A valid 16-bit CDF for ``values`` codable values plus the escape slot, every frequency >=
    1."""
    n = values + 1
    weights = [rng.random() ** 4 + 1e-12 for _ in range(n)]
    total = sum(weights)
    freqs = [1 + int(w / total * (65536 - n)) for w in weights]
    freqs[max(range(n), key=freqs.__getitem__)] += 65536 - sum(freqs)
    cdf = [0]
    for f in freqs:
        cdf.append(cdf[-1] + f)
    assert cdf[-1] == 65536 and min(freqs) >= 1
    return cdf


def _tables(rng: random.Random, count: int, padded: bool = False):
    cdfs = [_table(rng, rng.randrange(1, 60)) for _ in range(count)]
    lengths = [len(c) for c in cdfs]
    offsets = [rng.randrange(-40, 5) for _ in range(count)]
    if padded:  # rows zero-padded to the longest table, as CompressAI stores them
        width = max(lengths)
        cdfs = [c + [0] * (width - len(c)) for c in cdfs]
    return cdfs, lengths, offsets


def _sample(rng: random.Random, cdfs, lengths, offsets, indexes) -> list[int]:
    """Symbols drawn from their tables' distributions (escape slot excluded)."""
    out = []
    for t in indexes:
        u = rng.randrange(cdfs[t][lengths[t] - 2])
        out.append(bisect_right(cdfs[t], u, 0, lengths[t] - 1) - 1 + offsets[t])
    return out


def _ideal_bytes(symbols, indexes, cdfs, offsets) -> int:
    bits = sum(
        -math.log2((cdfs[t][s - offsets[t] + 1] - cdfs[t][s - offsets[t]]) / 65536)
        for s, t in zip(symbols, indexes)
    )
    return math.ceil(bits / 8)


@pytest.mark.parametrize("padded", [False, True])
def test_round_trip_canonical_and_tight(padded):
    rng = random.Random(0)
    cdfs, lengths, offsets = _tables(rng, 12, padded)
    for trial in range(300):
        n = rng.randrange(0, 400)
        indexes = [rng.randrange(len(cdfs)) for _ in range(n)]
        symbols = (
            _sample(rng, cdfs, lengths, offsets, indexes)
            if trial % 2
            # uniform: rare values too
            else [offsets[t] + rng.randrange(lengths[t] - 2) for t in indexes]
        )
        data = encode_with_indexes(symbols, indexes, cdfs, lengths, offsets)
        assert len(data) >= 1 and data[-1] != 0
        assert decode_with_indexes(data, indexes, cdfs, lengths, offsets) == symbols
        assert (
            encode_with_indexes(
                decode_with_indexes(data, indexes, cdfs, lengths, offsets),
                indexes,
                cdfs,
                lengths,
                offsets,
            )
            == data
        )
        ideal = _ideal_bytes(symbols, indexes, cdfs, offsets)
        if n >= 50:
            assert ideal - 1 <= len(data) <= ideal + 2, (len(data), ideal)
        assert len(data) <= (16 * n + 8 + 7) // 8  # the callers' size bound


def test_empty_and_tiny_payloads():
    rng = random.Random(1)
    cdfs, lengths, offsets = _tables(rng, 3)
    assert encode_with_indexes([], [], cdfs, lengths, offsets) == b"\x80"
    assert decode_with_indexes(b"", [], cdfs, lengths, offsets) == []
    # one very likely symbol still takes one byte
    cdf = [0, 65530, 65535, 65536]
    data = encode_with_indexes([0], [0], [cdf], [4], [0])
    assert len(data) == 1 and decode_with_indexes(data, [0], [cdf], [4], [0]) == [0]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_round_trip_hypothesis(data):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    cdfs, lengths, offsets = _tables(rng, data.draw(st.integers(1, 8)), data.draw(st.booleans()))
    indexes = data.draw(st.lists(st.integers(0, len(cdfs) - 1), max_size=150))
    symbols = [offsets[t] + data.draw(st.integers(0, lengths[t] - 3)) for t in indexes]
    payload = encode_with_indexes(symbols, indexes, cdfs, lengths, offsets)
    assert len(payload) >= 1
    assert decode_with_indexes(payload, indexes, cdfs, lengths, offsets) == symbols


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 2**32 - 1), st.integers(0, 200))
def test_any_bytes_decode_to_in_range_values(raw, seed, n):
    rng = random.Random(seed)
    cdfs, lengths, offsets = _tables(rng, 5)
    indexes = [rng.randrange(5) for _ in range(n)]
    out = decode_with_indexes(raw, indexes, cdfs, lengths, offsets)
    assert len(out) == n
    assert all(0 <= s - offsets[t] < lengths[t] - 2 for s, t in zip(out, indexes))
    again = encode_with_indexes(out, indexes, cdfs, lengths, offsets)  # always encodable
    if again == raw:
        assert decode_with_indexes(again, indexes, cdfs, lengths, offsets) == out


def test_random_bytes_and_escape_slot():
    rng = random.Random(2)
    # a table whose escape slot takes half of the range: garbage lands there often
    cdf = [0, 16384, 32768, 65536]
    seen_mismatch = False
    for _ in range(500):
        raw = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 30)))
        out = decode_with_indexes(raw, [0] * 20, [cdf], [4], [-1])
        assert len(out) == 20 and all(s in (-1, 0) for s in out)
        seen_mismatch |= encode_with_indexes(out, [0] * 20, [cdf], [4], [-1]) != raw
    assert seen_mismatch


def test_truncations_and_trailing_zeros_are_not_canonical():
    rng = random.Random(3)
    cdfs, lengths, offsets = _tables(rng, 4)
    indexes = [rng.randrange(4) for _ in range(100)]
    symbols = _sample(rng, cdfs, lengths, offsets, indexes)
    data = encode_with_indexes(symbols, indexes, cdfs, lengths, offsets)
    for extra in (b"\x00", b"\x00\x00", b"\x01"):
        out = decode_with_indexes(data + extra, indexes, cdfs, lengths, offsets)
        assert encode_with_indexes(out, indexes, cdfs, lengths, offsets) != data + extra


def test_wrong_inputs_raise_value_error():
    cdf = [0, 30000, 60000, 65536]  # values 0 and 1; 2 is the escape value
    enc = encode_with_indexes
    with pytest.raises(ValueError, match="escape"):
        enc([2], [0], [cdf], [4], [0])
    with pytest.raises(ValueError, match="escape"):
        enc([-1], [0], [cdf], [4], [0])
    with pytest.raises(ValueError):
        enc([0, 1], [0], [cdf], [4], [0])  # symbols and indexes differ in length
    with pytest.raises(ValueError):
        enc([0], [1], [cdf], [4], [0])  # no table 1
    with pytest.raises(ValueError):
        enc([0], [-1], [cdf], [4], [0])
    with pytest.raises(ValueError):
        enc([0], [0], [[0, 30000, 60000, 65535]], [4], [0])  # does not end at 2**16
    with pytest.raises(ValueError):
        enc([0], [0], [[0, 65536]], [2], [0])  # nothing codable
    with pytest.raises(ValueError):
        enc([1], [0], [[0, 100, 100, 65536]], [4], [0])  # zero frequency
    with pytest.raises(ValueError):
        decode_with_indexes(b"\x12", [0], [cdf], [4], [0, 1])
    with pytest.raises(ValueError):
        decode_with_indexes(b"\x12", [3], [cdf], [4], [0])
