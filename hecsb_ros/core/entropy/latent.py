"""Entropy coding of a rounded latent with a factorized prior's integer CDF tables.

The coder of every ``EntropyBottleneck`` latent: HECS-B's and SVB's ``(m, h, w)`` latent, the
factorized prior's ``y`` and the hyperprior's ``z``.

Payload format: the arithmetic code (:mod:`hecsb_ros.core.entropy.arith`) of the latent's symbols
for one image and nothing else: no header, no length, no coder state. The latent shape ``(m, h,
w)`` follows from the model (named by its model id) and the input size, so it is not sent. Symbol
``(c, i, j)`` is coded with channel ``c``'s table, in C-order, as CompressAI's
``EntropyBottleneck.compress`` orders them. The payload is within about one byte of the prior's
estimate ``sum(-log2 p) / 8`` (CompressAI's rANS stream, 32-bit words ending in an 8-byte state,
took 6-10 B more: 20-40% of a 25 B latent).

Symbols are clamped to the range the CDF tables cover, so the escape value is never coded; at
worst each symbol costs the 16-bit table precision, which bounds the payload size
(:meth:`LatentCoder.max_payload_bytes`). Decoding untrusted bytes is guarded as
:class:`~hecsb_ros.core.entropy.tables.TableCoder` describes: length between 1 byte and that
bound, in-range symbols, and a re-encoding that must give exactly the received bytes.
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck

from hecsb_ros.core.entropy.tables import TableCoder, channel_indexes


class LatentCoder:
    """Codes rounded latents ``(m, h, w)`` to bytes with an updated :class:`EntropyBottleneck`.

    The latent is ``z = s + median_c`` with integer symbols ``s`` per channel ``c`` (CompressAI's
    median-centred rounding); decoding gives the bit-identical ``z`` on any machine with the same
    checkpoint.
    """

    def __init__(self, eb: EntropyBottleneck, latent_shape: tuple[int, int, int]) -> None:
        if eb._offset.numel() == 0:
            raise ValueError("entropy bottleneck has no CDF tables: call update() after training")
        m, h, w = latent_shape
        if eb._offset.numel() != m:
            raise ValueError(f"prior has {eb._offset.numel()} channels, latent {m}")
        self.latent_shape = (m, h, w)
        self.num_symbols = m * h * w
        self.table = TableCoder.of(eb)
        self.indexes = self.table.bind(channel_indexes(self.latent_shape))
        self._medians = eb._get_medians().detach().reshape(m, 1, 1).to(torch.float32).clone()

    def symbols(self, y: torch.Tensor) -> torch.Tensor:
        """Unquantised latent ``(m, h, w)`` -> int64 symbols ``round(y - median)``, clamped to the
        tables."""
        s = torch.round(y.detach().to(torch.float32).cpu() - self._medians).to(torch.int64)
        return self.table.clamp(s, self.indexes)

    def dequantize(self, symbols: torch.Tensor) -> torch.Tensor:
        """Symbols ``(m, h, w)`` -> latent ``z = s + median`` float32 ``(m, h, w)``."""
        return symbols.to(torch.float32) + self._medians

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Unquantised latent ``(m, h, w)`` -> the rounded latent the server decodes (no
        coding)."""
        return self.dequantize(self.symbols(y))

    def encode_symbols(self, symbols: torch.Tensor) -> bytes:
        """In-range symbols ``(m, h, w)`` -> payload bytes."""
        return self.table.encode(symbols, self.indexes)

    def encode(self, y: torch.Tensor) -> tuple[bytes, torch.Tensor]:
        """Unquantised latent ``(m, h, w)`` -> (payload, the rounded latent the server will
        see)."""
        s = self.symbols(y)
        return self.encode_symbols(s), self.dequantize(s)

    def payload(self, y: torch.Tensor) -> bytes:
        """Unquantised latent ``(m, h, w)`` -> payload only (the edge's per-frame path)."""
        return self.encode_symbols(self.symbols(y))

    def max_payload_bytes(self) -> int:
        """Largest payload a legitimate encoder makes (16 bits per symbol, plus one byte)."""
        return TableCoder.max_bytes(self.num_symbols)

    def decode_symbols(self, data: bytes) -> torch.Tensor:
        """Payload -> int64 symbols ``(m, h, w)``; raises :class:`PayloadError` on invalid
        bytes."""
        return self.table.decode(data, self.indexes)

    def decode(self, data: bytes) -> torch.Tensor:
        """Payload -> rounded latent ``(m, h, w)`` float32, bit-identical to the edge's."""
        return self.dequantize(self.decode_symbols(data))
