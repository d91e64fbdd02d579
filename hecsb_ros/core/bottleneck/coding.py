"""Entropy coding of the rounded HECS-B latent with the prior's integer CDF tables.

Payload format: the rANS byte string of CompressAI's coder for one image and nothing else. The
latent shape ``(m, h, w)`` follows from the model (named by its model id) and the input size, so
it is not sent. rANS writes 32-bit words: a payload has 8 bytes of coder state plus 4 bytes per
further word.

Symbols are clamped to the range the CDF tables cover, so the coder's escape ("bypass") mode is
never used by a legitimate payload; at worst each symbol costs the 16-bit table precision, which
bounds the payload size (:meth:`LatentCoder.max_payload_bytes`).

Decoding untrusted bytes is guarded, because the C++ decoder reads past the end of its input
without noticing:

1. the length must be a positive multiple of 4, at least 8 and at most the bound above;
2. the bytes are decoded from a copy followed by enough zero words that no read can leave the
   buffer (each decoded symbol reads a bounded number of words, see :data:`_PAD_WORDS_PER_SYMBOL`);
3. every decoded symbol must lie in its table's range (an escape means garbage);
4. the symbols are re-encoded and must give exactly the received bytes, which rejects truncated
   and corrupted payloads that happen to decode to in-range symbols.
"""
from __future__ import annotations

import numpy as np
import torch
from compressai.ans import RansDecoder, RansEncoder
from compressai.entropy_models import EntropyBottleneck

from hecsb_ros.core.payload import PayloadError

#: Upper bound on the 32-bit words one decoded symbol can consume from a zero-padded stream:
#: one renormalisation for the symbol, and in escape mode at most 24 4-bit length reads (a
#: 64-bit state runs out of 1-bits) plus 15 x 24 4-bit value reads, one word per eight reads.
_PAD_WORDS_PER_SYMBOL = 64
_STATE_BYTES = 8


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
        self._cdfs = eb._quantized_cdf.tolist()
        self._lengths = eb._cdf_length.reshape(-1).int().tolist()
        self._offsets = eb._offset.reshape(-1).int().tolist()
        idx = np.repeat(np.arange(m, dtype=np.int64), h * w)
        self._indexes = idx.tolist()
        offsets = np.asarray(self._offsets, dtype=np.int64)
        # symbol s of channel c is coded in range when 0 <= s - offset_c < length_c - 2
        self._lo = torch.from_numpy(offsets[idx]).view(m, h, w)
        self._hi = torch.from_numpy(offsets[idx] + np.asarray(self._lengths, dtype=np.int64)[idx] - 3).view(m, h, w)
        self._medians = eb._get_medians().detach().reshape(m, 1, 1).to(torch.float32).clone()
        self._encoder = RansEncoder()
        self._decoder = RansDecoder()

    def symbols(self, y: torch.Tensor) -> torch.Tensor:
        """Unquantised latent ``(m, h, w)`` -> int64 symbols ``round(y - median)``, clamped to the tables."""
        s = torch.round(y.detach().to(torch.float32).cpu() - self._medians).to(torch.int64)
        return torch.maximum(torch.minimum(s, self._hi), self._lo)

    def dequantize(self, symbols: torch.Tensor) -> torch.Tensor:
        """Symbols ``(m, h, w)`` -> latent ``z = s + median`` float32 ``(m, h, w)``."""
        return symbols.to(torch.float32) + self._medians

    def encode_symbols(self, symbols: torch.Tensor) -> bytes:
        """Symbols ``(m, h, w)`` -> payload bytes."""
        return self._encoder.encode_with_indexes(symbols.reshape(-1).tolist(), self._indexes, self._cdfs,
                                                 self._lengths, self._offsets)

    def encode(self, y: torch.Tensor) -> tuple[bytes, torch.Tensor]:
        """Unquantised latent ``(m, h, w)`` -> (payload, the rounded latent the server will see)."""
        s = self.symbols(y)
        return self.encode_symbols(s), self.dequantize(s)

    def max_payload_bytes(self) -> int:
        """Largest payload a legitimate encoder makes (16 bits per symbol, plus the state)."""
        return _STATE_BYTES + 4 * ((self.num_symbols * 16 + 31) // 32) + 4

    def decode_symbols(self, data: bytes) -> torch.Tensor:
        """Payload -> int64 symbols ``(m, h, w)``; raises :class:`PayloadError` on invalid bytes."""
        n = len(data)
        if n < _STATE_BYTES or n % 4:
            raise PayloadError("truncated", f"{n} B is not a whole rANS stream (>= 8 B, multiple of 4)")
        if n > self.max_payload_bytes():
            raise PayloadError("decode_error", f"{n} B exceeds the {self.max_payload_bytes()} B a latent can take")
        padded = bytes(data) + bytes(4 * _PAD_WORDS_PER_SYMBOL * self.num_symbols + 64)
        values = self._decoder.decode_with_indexes(padded, self._indexes, self._cdfs, self._lengths, self._offsets)
        s = torch.tensor(values, dtype=torch.int64).view(self.latent_shape)
        if bool(((s < self._lo) | (s > self._hi)).any()):
            raise PayloadError("decode_error", "decoded symbols outside the prior's range")
        again = self.encode_symbols(s)
        if again != data:
            reason = "truncated" if len(again) > n and again.startswith(data) else "decode_error"
            raise PayloadError(reason, "payload is not a valid encoding of any latent")
        return s

    def decode(self, data: bytes) -> torch.Tensor:
        """Payload -> rounded latent ``(m, h, w)`` float32, bit-identical to the edge's."""
        return self.dequantize(self.decode_symbols(data))
