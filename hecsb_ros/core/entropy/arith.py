"""Tight binary arithmetic coder over CompressAI's integer CDF tables (pure Python).

Replaces CompressAI's rANS coder (``compressai.ans``) for the entropy-coded payloads. rANS writes
whole 32-bit words and ends with its 8-byte state, so a payload is a multiple of 4 bytes and at
least 8: 6-10 B per payload above the model's estimate, 20-40% of a 25 B latent. This coder
(Witten, Neal and Cleary 1987: 32-bit ``low``/``high`` registers, bit output with pending
underflow bits) stays within about one byte of the estimate ``sum(-log2 p) / 8``.

Tables follow CompressAI's convention of ``encode_with_indexes(symbols, indexes, cdfs,
cdf_lengths, offsets)``: precision 16 bits, ``cdf[0] == 0`` and ``cdf[length - 1] == 65536``;
table ``t`` codes the value ``v = symbol - offsets[t]`` with frequency ``cdf[v + 1] - cdf[v]``.
Only ``0 <= v < length - 2`` is coded; CompressAI's escape value ``length - 2`` is not supported
(callers clamp symbols to the tables; the encoder raises :class:`ValueError`).

Format: the code bits, most significant bit of each byte first, and nothing else: no header, no
length, no coder state. After the last symbol the encoder writes the single bit ``1`` (plus the
pending bits, which are zeros then): the point ``...1000...`` lies inside every final interval,
since normalisation leaves ``low < 2**31 <= high``. The last byte is padded with zeros and
trailing zero bytes are dropped (never below one byte, so a payload is never empty). The decoder
reads bits past the end of the data as zeros, so it never reads out of bounds, always returns
``len(indexes)`` values in ``0 <= v < length - 2`` (plus the offset) whatever the bytes, and
decoding the encoder's output and re-encoding gives the same bytes (canonical form). Bytes the
encoder cannot have made (corrupted, truncated, trailing zeros) decode to some symbols whose
re-encoding differs; callers reject them by re-encoding.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

PRECISION = 16
TOTAL = 1 << PRECISION
_BITS = 32
_MASK = (1 << _BITS) - 1
_HALF = 1 << (_BITS - 1)
_QUARTER = 1 << (_BITS - 2)
_THREE_QUARTERS = 3 * _QUARTER
#: Bits the decoder can shift in per symbol: a coded interval keeps at least 2**30 * 1 / 2**16
#: of the range, and normalisation stops at the latest once the range exceeds 2**31 (so one
#: 64-bit refill of the decoder's read-ahead buffer always suffices).
MAX_BITS_PER_SYMBOL = 18
_FLUSH_BITS = 256


def check_tables(
    cdfs: Sequence[Sequence[int]],
    cdf_lengths: Sequence[int],
    offsets: Sequence[int],
    used: Sequence[int] | None = None,
) -> None:
    """ValueError unless the tables (those named in ``used``; None: all) have CompressAI's ends."""
    if not len(cdfs) == len(cdf_lengths) == len(offsets):
        raise ValueError("cdfs, cdf_lengths and offsets differ in length")
    n = len(cdfs)
    for t in range(n) if used is None else set(used):
        if not 0 <= t < n:
            raise ValueError(f"table index {t} outside 0..{n - 1}")
        length, cdf = cdf_lengths[t], cdfs[t]
        if length < 3 or len(cdf) < length or cdf[0] != 0 or cdf[length - 1] != TOTAL:
            raise ValueError(
                f"table {t} is not a {PRECISION}-bit CDF with at least one codable value"
            )


def _check(
    count: int,
    indexes: Sequence[int],
    cdfs: Sequence[Sequence[int]],
    cdf_lengths: Sequence[int],
    offsets: Sequence[int],
    validated: bool,
) -> None:
    """ValueError unless there is one index per symbol and (unless ``validated``: the caller has
    checked them once, see :func:`check_tables`) the tables named by ``indexes`` are valid."""
    if count != len(indexes):
        raise ValueError(f"{count} symbols but {len(indexes)} indexes")
    if not validated:
        check_tables(cdfs, cdf_lengths, offsets, indexes)


def encode_with_indexes(
    symbols: Sequence[int],
    indexes: Sequence[int],
    cdfs: Sequence[Sequence[int]],
    cdf_lengths: Sequence[int],
    offsets: Sequence[int],
    validated: bool = False,
) -> bytes:
    """Symbols, each with the index of its table -> the arithmetic code (at least one byte).

    ``validated``: the indexes and tables were checked once (:func:`check_tables`), skip that here.
    """
    _check(len(symbols), indexes, cdfs, cdf_lengths, offsets, validated)
    low, high, pending = 0, _MASK, 0
    acc, nacc = 0, 0  # output bits not yet moved to ``out``
    out = bytearray()
    half, quarter, three_quarters = _HALF, _QUARTER, _THREE_QUARTERS
    for s, t in zip(symbols, indexes):
        v = s - offsets[t]
        if not 0 <= v < cdf_lengths[t] - 2:
            raise ValueError(
                f"symbol {s} outside the codable range of table {t} (escape is not supported)"
            )
        cdf = cdfs[t]
        c_lo, c_hi = cdf[v], cdf[v + 1]
        if c_hi <= c_lo:
            raise ValueError(f"symbol {s} has frequency {c_hi - c_lo} in table {t}")
        r = high - low + 1
        high = low + ((r * c_hi) >> 16) - 1
        low += (r * c_lo) >> 16
        while True:
            if high < half:
                acc = (acc << (pending + 1)) | ((1 << pending) - 1)  # 0, then pending 1s
            elif low >= half:
                acc = (acc << (pending + 1)) | (1 << pending)  # 1, then pending 0s
                low -= half
                high -= half
            elif low >= quarter and high < three_quarters:
                pending += 1
                low -= quarter
                high -= quarter
                low <<= 1
                high = (high << 1) | 1
                continue
            else:
                break
            nacc += pending + 1
            pending = 0
            low <<= 1
            high = (high << 1) | 1
        if nacc >= _FLUSH_BITS:
            keep = nacc & 7
            out += (acc >> keep).to_bytes(nacc >> 3, "big")
            acc &= (1 << keep) - 1
            nacc = keep
    # termination: the point 1000... (pending 0s and padding included) is inside [low, high]
    acc = (acc << 1) | 1
    nacc += 1
    pad = -nacc & 7
    out += (acc << pad).to_bytes((nacc + pad) >> 3, "big")
    end = len(out)
    while end > 1 and out[end - 1] == 0:
        end -= 1
    return bytes(out[:end])


def decode_with_indexes(
    data: bytes,
    indexes: Sequence[int],
    cdfs: Sequence[Sequence[int]],
    cdf_lengths: Sequence[int],
    offsets: Sequence[int],
    validated: bool = False,
) -> list[int]:
    """Arithmetic code -> ``len(indexes)`` symbols; bits past the end of ``data`` read as zeros.

    Never fails on the bytes: any input decodes to in-range symbols (values in the escape slot,
    which only garbage reaches, come out as the largest codable value, so re-encoding differs).
    ``validated`` as for :func:`encode_with_indexes`.
    """
    count = len(indexes)
    _check(count, indexes, cdfs, cdf_lengths, offsets, validated)
    data = bytes(data)
    value = int.from_bytes(data[:4], "big") << (8 * max(0, 4 - len(data)))
    p = 4  # next byte of ``data`` to move into ``buf``
    buf, nbuf = 0, 0  # bits read ahead, not yet shifted into ``value``
    low, high = 0, _MASK
    half, quarter, three_quarters = _HALF, _QUARTER, _THREE_QUARTERS
    out = []
    append = out.append
    for t in indexes:
        cdf = cdfs[t]
        top = cdf_lengths[t] - 1
        r = high - low + 1
        scaled = (((value - low + 1) << 16) - 1) // r
        v = bisect_right(cdf, scaled, 0, top) - 1
        if not cdf[v] <= scaled < cdf[v + 1]:
            raise ValueError(f"table {t} is not increasing")
        high = low + ((r * cdf[v + 1]) >> 16) - 1
        low += (r * cdf[v]) >> 16
        append(min(v, top - 2) + offsets[t])
        shift = 0
        while True:
            if high < half:
                pass
            elif low >= half:
                low -= half
                high -= half
                value -= half
            elif low >= quarter and high < three_quarters:
                low -= quarter
                high -= quarter
                value -= quarter
            else:
                break
            low <<= 1
            high = (high << 1) | 1
            value <<= 1
            shift += 1
        if shift:
            # shift <= MAX_BITS_PER_SYMBOL: one refill of 64 bits (zeros past the end)
            if nbuf < shift:
                chunk = data[p : p + 8]
                buf = (buf << 64) | (int.from_bytes(chunk, "big") << (64 - 8 * len(chunk)))
                nbuf += 64
                p += 8
            nbuf -= shift
            value |= buf >> nbuf
            buf &= (1 << nbuf) - 1
    return out
