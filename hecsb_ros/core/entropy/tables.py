"""Guarded arithmetic coding with CompressAI's integer CDF tables, and minimal payload framing.

Used by :class:`~hecsb_ros.core.entropy.latent.LatentCoder` (factorized-prior latents: HECS-B, SVB,
the factorized prior, the hyperprior's ``z``) and by the hyperprior's Gaussian ``y`` stream. A
:class:`TableCoder` wraps the tables of one entropy model (an ``EntropyBottleneck``: one table per
channel; a ``GaussianConditional``: one table per scale of its scale table); each call names the
table of every symbol (``indexes``), exactly as CompressAI's ``encode_with_indexes`` does. The
coder is :mod:`hecsb_ros.core.entropy.arith` (a stream is the code bits only: no header, length or
coder state, within about a byte of the model's estimate), not CompressAI's rANS, whose 32-bit
words and 8-byte state cost 6-10 B a stream; streams of more than :data:`RANS_MIN_SYMBOLS` symbols
(camera-scale latents) use rANS, whose cost is negligible there and whose C++ coder is a hundred
times faster.

Symbols are clamped to the range their table covers (the escape value is never coded), so the
size of a stream of ``n`` symbols is bounded by 16 bits per symbol plus one byte
(:meth:`TableCoder.max_bytes`). Decoding untrusted bytes is guarded:

1. the length must be at least 1 and at most that bound;
2. decoding reads bits past the end as zeros and always yields in-range symbols; they are checked
   anyway;
3. the symbols are re-encoded and must give exactly the received bytes (the coder's output is
   canonical), which rejects truncated, padded and corrupted streams unless the damage happens to
   give another valid stream (a tight code has little redundancy to detect errors with).

Framing of two streams (hyperprior ``z`` then ``y``): an unsigned LEB128 varint with the length of
the first stream, the first stream, then the second (its length is the rest).
"""

from __future__ import annotations

from typing import Sequence

import torch

import hecsb_ros.core.entropy.arith as arith
from hecsb_ros.core.payload import PayloadError

MAX_VARINT_BYTES = 3
#: Streams of more symbols than this are coded with CompressAI's rANS coder (C++) instead of the
#: pure-Python arithmetic coder: rANS costs 6-10 B per stream (32-bit words, an 8-byte final
#: state), a third of a 25 B latent but under 1% of the kilobytes of a camera-scale latent, and it
#: codes a 25,000-symbol latent in milliseconds. Part of the payload format: a stream's coder
#: follows from its number of symbols, which the model fixes.
RANS_MIN_SYMBOLS = 2048


class Indexes:
    """The table of every element of a latent, prepared once for many calls.

    An ``EntropyBottleneck`` latent of fixed shape always uses the same indexes (its channels), so
    the flat index list, the per-element clamp bounds and the range check are done here once
    instead of on every frame (:meth:`TableCoder.bind`).
    """

    def __init__(self, coder: "TableCoder", indexes: torch.Tensor) -> None:
        idx = indexes.to(torch.int64)
        if idx.numel() and not (0 <= int(idx.min()) and int(idx.max()) < coder.tables):
            raise ValueError(f"table indexes outside 0..{coder.tables - 1}")
        self.shape = tuple(indexes.shape)
        self.count = int(idx.numel())
        self.flat: list[int] = idx.reshape(-1).tolist()
        self.lo = coder.lo[idx]  # smallest in-range symbol of every element
        self.hi = coder.hi[idx]


class TableCoder:
    """Arithmetic coder over the integer CDF tables of one updated CompressAI entropy model.

    Args:
        quantized_cdf: ``(T, L)`` int32 CDF tables (``_quantized_cdf`` after ``update()``).
        cdf_length: ``(T,)`` table lengths. offset: ``(T,)`` symbol offsets.

    The tables are checked once here; ``indexes`` arguments are a tensor of table indexes (checked
    on every call) or an :class:`Indexes` made by :meth:`bind` (checked once).
    """

    def __init__(
        self, quantized_cdf: torch.Tensor, cdf_length: torch.Tensor, offset: torch.Tensor
    ) -> None:
        if offset.numel() == 0:
            raise ValueError("entropy model has no CDF tables: call update() after training")
        self._lengths = cdf_length.reshape(-1).int().tolist()
        # rows are zero-padded to the longest table; the coder reads only cdf[0 : length]
        self._cdfs = [row[:n] for row, n in zip(quantized_cdf.tolist(), self._lengths)]
        self._offsets = offset.reshape(-1).int().tolist()
        arith.check_tables(self._cdfs, self._lengths, self._offsets)
        self.lo = offset.reshape(-1).to(torch.int64)  # (T,) smallest in-range symbol
        self.hi = self.lo + cdf_length.reshape(-1).to(torch.int64) - 3  # (T,) largest

    @classmethod
    def of(cls, module: torch.nn.Module) -> "TableCoder":
        """Coder for an ``EntropyBottleneck`` or ``GaussianConditional`` (after ``update()``)."""
        return cls(module._quantized_cdf, module._cdf_length, module._offset)

    @property
    def tables(self) -> int:
        return int(self.lo.numel())

    def bind(self, indexes: torch.Tensor | Indexes) -> Indexes:
        """``indexes`` prepared for repeated calls (an :class:`Indexes` is returned as it is)."""
        return indexes if isinstance(indexes, Indexes) else Indexes(self, indexes)

    def clamp(self, symbols: torch.Tensor, indexes: torch.Tensor | Indexes) -> torch.Tensor:
        """Clamp int64 ``symbols`` to the range of their tables ``indexes`` (same shape)."""
        b = self.bind(indexes)
        return torch.clamp(symbols.to(torch.int64), b.lo, b.hi)

    @staticmethod
    def max_bytes(num_symbols: int) -> int:
        """Largest stream for ``num_symbols`` in-range symbols (16 bits each, plus one byte; with
        rANS, plus its final state and the rounding to 32-bit words)."""
        if num_symbols > RANS_MIN_SYMBOLS:
            return 4 * (-(-(2 * num_symbols + 8) // 4)) + 8
        return (16 * num_symbols + 8 + 7) // 8

    @staticmethod
    def uses_rans(num_symbols: int) -> bool:
        return num_symbols > RANS_MIN_SYMBOLS

    def encode(self, symbols: torch.Tensor, indexes: torch.Tensor | Indexes) -> bytes:
        """In-range int64 ``symbols`` with table ``indexes`` (any equal shapes) -> bytes (at least
        one)."""
        b = self.bind(indexes)
        values = symbols.reshape(-1).tolist()
        if self.uses_rans(b.count):
            from compressai.ans import RansEncoder

            return RansEncoder().encode_with_indexes(
                values, b.flat, self._cdfs, self._lengths, self._offsets
            )
        return arith.encode_with_indexes(
            values, b.flat, self._cdfs, self._lengths, self._offsets, validated=True
        )

    def decode(self, data: bytes, indexes: torch.Tensor | Indexes) -> torch.Tensor:
        """Bytes -> int64 symbols shaped like ``indexes``; :class:`PayloadError` on invalid
        bytes."""
        data = bytes(data)
        b = self.bind(indexes)
        n = len(data)
        if n < 1:
            raise PayloadError("truncated", "empty stream")
        if n > self.max_bytes(b.count):
            raise PayloadError(
                "decode_error",
                f"{n} B exceeds the {self.max_bytes(b.count)} B of {b.count} symbols",
            )
        if self.uses_rans(b.count):
            if n < 8 or n % 4:
                raise PayloadError(
                    "truncated" if n < 8 else "decode_error",
                    f"a rANS stream is whole 32-bit words, at least two; got {n} B",
                )
            from compressai.ans import RansDecoder

            # the C++ decoder reads one word per renormalisation without a bounds check: zeros
            # after the stream keep a hostile one from reading past its end (a valid stream never
            # reads them)
            padded = data + bytes(4 * b.count + 8)
            values = RansDecoder().decode_with_indexes(
                padded, b.flat, self._cdfs, self._lengths, self._offsets
            )
        else:
            values = arith.decode_with_indexes(
                data, b.flat, self._cdfs, self._lengths, self._offsets, validated=True
            )
        s = torch.tensor(values, dtype=torch.int64).view(b.shape)
        if bool(((s < b.lo) | (s > b.hi)).any()):
            raise PayloadError("decode_error", "decoded symbols outside their tables' range")
        again = self.encode(s, b)
        if again != data:
            reason = "truncated" if len(again) > n and again.startswith(data) else "decode_error"
            raise PayloadError(reason, "payload is not a valid encoding of any latent")
        return s


def channel_indexes(shape: Sequence[int]) -> torch.Tensor:
    """Table index of every element of an ``EntropyBottleneck`` latent ``(C, H, W)``: its
    channel."""
    c, h, w = shape
    return torch.arange(c, dtype=torch.int32).view(c, 1, 1).expand(c, h, w).contiguous()


def write_varint(n: int) -> bytes:
    """Unsigned LEB128 encoding of ``0 <= n < 2**21``."""
    if not 0 <= n < 1 << (7 * MAX_VARINT_BYTES):
        raise ValueError(f"length {n} cannot be framed")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(data: bytes) -> tuple[int, int]:
    """(value, bytes used) of the varint at the start of ``data``; PayloadError when malformed."""
    value = 0
    for i in range(min(len(data), MAX_VARINT_BYTES)):
        value |= (data[i] & 0x7F) << (7 * i)
        if not data[i] & 0x80:
            if i > 0 and data[i] == 0:
                raise PayloadError("decode_error", "non-minimal length prefix")
            return value, i + 1
    raise PayloadError(
        "truncated" if len(data) < MAX_VARINT_BYTES else "decode_error", "bad length prefix"
    )


def frame_two(first: bytes, second: bytes) -> bytes:
    """``varint(len(first)) + first + second``."""
    return write_varint(len(first)) + first + second


def unframe_two(data: bytes, max_first: int, max_second: int) -> tuple[bytes, bytes]:
    """Split a two-stream payload, checking both lengths against their bounds."""
    n, used = read_varint(data)
    if n > max_first:
        raise PayloadError(
            "decode_error", f"first stream of {n} B exceeds its {max_first} B bound"
        )
    if used + n > len(data):
        raise PayloadError(
            "truncated", f"payload ends inside its first stream ({len(data) - used} of {n} B)"
        )
    second = data[used + n :]
    if len(second) > max_second:
        raise PayloadError(
            "decode_error", f"second stream of {len(second)} B exceeds its {max_second} B bound"
        )
    return bytes(data[used : used + n]), bytes(second)
