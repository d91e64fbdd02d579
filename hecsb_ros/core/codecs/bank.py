"""Every rate level of one codec at once: the edge switches levels at run time, the server decodes
each payload with the level its model id and rate level name.

For a learned codec the bank holds one codec per shipped level (for the teacher the settings name),
each with its own model id; for a classic image codec one instance serves every quality (decoding
does not depend on it) and the edge makes encoders of other qualities when asked. Unknown model ids
and levels are refused as before (``model_mismatch``, ``bad_rate``).
"""

from __future__ import annotations

import sys
from dataclasses import replace

from hecsb_ros.core.codecs.base import Codec, CodecSettings, codec_class, create_codec
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.ratecontrol import LevelProfile
from hecsb_ros.core.store import read_manifest


class CodecBank:
    """The rate levels of codec ``name``: ``codec(level)`` for the edge, ``for_payload(...)`` for
    the server.

    ``default``: an already built codec at the configured level (else one is made); ``all_levels``:
    False keeps the bank to that one level (quality), as a server that serves one level only.
    """

    def __init__(
        self,
        name: str,
        settings: CodecSettings,
        levels: list[int] | None = None,
        default: Codec | None = None,
        all_levels: bool = True,
    ) -> None:
        self.name = name
        self.settings = settings
        self.cls = codec_class(name)
        # one model (and model id) per level; a learned codec's module is imported by codec_class
        learned = sys.modules.get("hecsb_ros.core.codecs.learned")
        self.per_level = learned is not None and issubclass(self.cls, learned.LearnedCodec)
        self.learned = self.per_level and not settings.checkpoint
        self.all_levels = all_levels
        if levels is None:
            levels = (
                learned.shipped_levels(self.cls.kind, settings.teacher)
                if self.learned and all_levels
                else []
            )
        self._codecs: dict[int, Codec] = {}
        default = default if default is not None else create_codec(name, settings)
        self.default_level = default.quality
        self._codecs[default.quality] = default
        for level in levels:
            self.codec(level)
        _, self.lowest, self.highest = self.cls.quality_bounds(settings)

    @property
    def levels(self) -> list[int]:
        """Levels loaded so far (learned: every shipped one)."""
        return sorted(self._codecs)

    def accepts(self, rate_level: int) -> bool:
        """Whether a payload at ``rate_level`` (with the right model id) is decoded."""
        if self.per_level or not self.all_levels:
            return (
                rate_level in self._codecs if self.per_level else rate_level == self.default_level
            )
        return self.lowest <= rate_level <= self.highest

    def describe(self) -> str:
        if self.per_level:
            return f"rate levels {', '.join(map(str, self.levels))}"
        if self.all_levels:
            return f"qualities {self.lowest}-{self.highest}"
        return f"quality {self.default_level} only"

    def codec(self, level: int) -> Codec:
        """The codec at ``level`` (made on first use); ValueError outside the codec's range."""
        if level not in self._codecs:
            self._codecs[level] = create_codec(self.name, replace(self.settings, quality=level))
        return self._codecs[level]

    def for_payload(self, codec_name: str, model_id: str, rate_level: int) -> Codec:
        """The codec that decodes a payload of codec ``codec_name``, encoder ``model_id``, at
        ``rate_level``; PayloadError (unknown_codec, model_mismatch, bad_rate) otherwise."""
        if codec_name != self.name:
            raise PayloadError(
                "unknown_codec", f"codec {codec_name!r} not served (serving {self.name!r})"
            )
        if self.per_level:
            known = {c.model_id: c for c in self._codecs.values()}
            if model_id not in known:
                raise PayloadError(
                    "model_mismatch",
                    f"payload made by encoder {model_id!r}, not "
                    "one of this "
                    f"server's levels ({self.describe()})",
                )
            codec = self._codecs.get(rate_level)
            if codec is None or codec.model_id != model_id:
                raise PayloadError(
                    "bad_rate",
                    f"payload of encoder {model_id!r} labelled rate "
                    f"level {rate_level}; "
                    f"that encoder is level {known[model_id].quality}",
                )
            return codec
        codec = self._codecs[self.default_level]
        if model_id != codec.model_id:
            raise PayloadError(
                "model_mismatch",
                f"payload made by encoder {model_id!r}, this server runs {codec.model_id!r}",
            )
        if not self.accepts(rate_level):
            raise PayloadError("bad_rate", f"quality {rate_level} not served ({self.describe()})")
        return codec

    def level_profiles(self, overhead_bytes: float = 100.0) -> list[LevelProfile]:
        """What each loaded level costs and gives, from its manifest: mean payload bytes (plus
        ``overhead_bytes`` of message header) and accuracy (on the held-out images where the
        manifest has them: the level selection's, else training's; else the test set's); edge and
        server times are left at 0 for the caller to measure. ValueError unless at least two levels
        have both figures (rate control has nothing to choose)."""
        profiles = []
        for level in self.levels:
            codec = self._codecs[level]
            manifest = read_manifest(codec.path) if hasattr(codec, "path") else {}
            # held-out figures of select_levels, where it chose the level
            chosen = manifest.get("selection", {})
            accuracy = chosen.get(
                "val_agreement", manifest.get("val_accuracy", manifest.get("test_accuracy"))
            )
            size = chosen.get("val_bytes_mean", manifest.get("mean_payload_bytes"))
            if accuracy is not None and size is not None:
                profiles.append(
                    LevelProfile(level, float(size) + overhead_bytes, float(accuracy), 0.0, 0.0)
                )
        if len(profiles) < 2:
            raise ValueError(
                "rate control needs two or more rate levels with manifests (payload "
                "bytes, accuracy); "
                f"codec {self.name!r} has {len(profiles)} ({self.describe()}): use a "
                "learned codec "
                f"with its shipped levels"
            )
        return profiles
