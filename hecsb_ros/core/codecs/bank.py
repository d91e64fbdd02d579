"""Every rate level of one codec at once: the edge switches levels at run time, the server decodes
each payload with the level its model id and rate level name.

For a learned codec the bank holds one codec per shipped level (for the teacher the settings name),
each with its own model id; for a classic image codec one instance serves every quality (decoding
does not depend on it) and the edge makes encoders of other qualities when asked. Unknown model ids
and levels are refused as before (``model_mismatch``, ``bad_rate``).
"""
from __future__ import annotations

from dataclasses import replace

from hecsb_ros.core.codecs.base import Codec, CodecSettings, codec_class, create_codec
from hecsb_ros.core.codecs.learned import LearnedCodec, shipped_levels
from hecsb_ros.core.payload import PayloadError


class CodecBank:
    """The rate levels of codec ``name``: ``codec(level)`` for the edge, ``for_payload(...)`` for the server."""

    def __init__(self, name: str, settings: CodecSettings, levels: list[int] | None = None) -> None:
        self.name = name
        self.settings = settings
        self.cls = codec_class(name)
        self.learned = issubclass(self.cls, LearnedCodec) and not settings.checkpoint
        if levels is None:
            levels = shipped_levels(self.cls.kind, settings.teacher) if self.learned else []
        self._codecs: dict[int, Codec] = {}
        default = create_codec(name, settings)
        self.default_level = default.quality
        self._codecs[default.quality] = default
        for level in levels:
            self.codec(level)
        _, self.lowest, self.highest = self.cls.quality_bounds(settings)

    @property
    def levels(self) -> list[int]:
        """Levels loaded so far (learned: every shipped one)."""
        return sorted(self._codecs)

    def codec(self, level: int) -> Codec:
        """The codec at ``level`` (made on first use); ValueError outside the codec's range."""
        if level not in self._codecs:
            self._codecs[level] = create_codec(self.name, replace(self.settings, quality=level))
        return self._codecs[level]

    def for_payload(self, model_id: str, rate_level: int) -> Codec:
        """The codec that decodes a payload of ``model_id`` at ``rate_level``; PayloadError otherwise."""
        if self.learned:
            codec = self._codecs.get(rate_level)
            if codec is None:
                raise PayloadError("bad_rate", f"rate level {rate_level} not served (serving {self.levels})")
            if codec.model_id != model_id:
                known = {c.model_id for c in self._codecs.values()}
                reason = "model_mismatch" if model_id not in known else "bad_rate"
                raise PayloadError(reason, f"payload of encoder {model_id!r} at level {rate_level}; level "
                                           f"{rate_level} is encoder {codec.model_id!r}")
            return codec
        codec = self._codecs[self.default_level]
        if model_id != codec.model_id:
            raise PayloadError("model_mismatch", f"payload made by encoder {model_id!r}, this server runs "
                                                 f"{codec.model_id!r}")
        if not self.lowest <= rate_level <= self.highest:
            raise PayloadError("bad_rate", f"quality {rate_level} outside {self.lowest}..{self.highest}")
        return codec
