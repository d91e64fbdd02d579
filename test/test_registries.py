"""The registries: learned models, their codecs and training recipes. A learned codec of one's own
is one class plus its registrations, and then trains, saves, loads and serves like the built-in
ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compressai.entropy_models import EntropyBottleneck
from torch import nn

from hecsb_ros.core.codecs import CodecSettings, codec_class, create_codec, list_codecs
from hecsb_ros.core.codecs.learned import LearnedCodec, register_learned_codec
from hecsb_ros.core.learned import (
    BUILTIN_MODELS,
    FactorizedLatentModel,
    list_models,
    model_class,
    register_model,
)
from hecsb_ros.core.learned.hecsb import HecsbConfig
from hecsb_ros.core.training.config import DistilledOptions
from hecsb_ros.core.training.data import TensorSource
from hecsb_ros.core.training.recipes import (
    RECIPES,
    Recipe,
    TrainJob,
    distilled,
    get_recipe,
    register_recipe,
    train_level,
)

torch.set_num_threads(1)


def test_every_builtin_learned_model_is_a_codec_with_a_recipe():
    for kind in BUILTIN_MODELS:
        cls = codec_class(kind)
        assert (
            issubclass(cls, LearnedCodec)
            and cls.kind == kind
            and cls.description == model_class(kind).description
        )
        assert (
            get_recipe(kind).setting
            == model_class(kind).rate_setting
            in ("beta", "channels", "lmbda")
        )
    assert set(RECIPES) >= set(BUILTIN_MODELS)
    with pytest.raises(ValueError, match="known:.*hecsb"):
        model_class("nope")
    with pytest.raises(ValueError, match="known codecs"):
        create_codec("nope")


@register_model
class OneConvBottleneck(FactorizedLatentModel):
    """A codec of one's own: one stride-2 convolution to a factorized-prior latent, one transposed
    back."""

    kind = "oneconv_test"
    description = "test bottleneck"
    rate_setting = "beta"
    config_type = HecsbConfig  # any frozen dataclass with latent_shape

    def __init__(self, config: HecsbConfig) -> None:
        super().__init__()
        self.config = config
        self.g_a = nn.Conv2d(config.in_channels, config.measurements, 5, 4, 2)
        self.entropy_bottleneck = EntropyBottleneck(config.measurements)
        self.g_phi = nn.ConvTranspose2d(config.measurements, config.feature_channels, 4, 2, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.g_a(x)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.g_a.parameters())


def test_a_learned_codec_of_ones_own_trains_saves_and_serves(tmp_path):
    from hecsb_ros.core.teachers import load_teacher

    teacher = load_teacher()
    channels, size = teacher.split_features()
    config = HecsbConfig(1, (28, 28), channels, size, acq_channels=(4, 8), measurements=2)
    register_recipe(
        Recipe("oneconv_test", distilled(lambda job: (OneConvBottleneck(config), None)), False)
    )
    register_learned_codec("oneconv_test")
    assert "oneconv_test" in list_models() and "oneconv_test" in list_codecs()
    g = torch.Generator().manual_seed(0)
    data = TensorSource(
        torch.randn(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g)
    )
    options = DistilledOptions(stage1_epochs=1, stage2_epochs=1, batch_size=16, seed=0)
    job = TrainJob(
        "oneconv_test", 0.01, 0, teacher, data, options, progress=False, log=lambda s: None
    )
    path = tmp_path / "oneconv_test_fmnist_r0.safetensors"
    manifest = train_level(job, path, data, 0.1, "test")
    assert (
        manifest["kind"] == "oneconv_test"
        and manifest["beta"] == 0.01
        and manifest["test_images"] == 32
    )
    codec = create_codec("oneconv_test", CodecSettings(checkpoint=str(path)))
    frame = codec.encode(np.zeros((28, 28), np.uint8), "mono8")
    assert codec.decode(frame.data, frame.shape).logits.shape == (10,)
    assert codec.model_id == manifest["model_id"]


def test_codec_bank_serves_every_shipped_level():
    import numpy as np

    from hecsb_ros.core.codecs.bank import CodecBank
    from hecsb_ros.core.codecs.learned import default_level
    from hecsb_ros.core.payload import PayloadError
    from hecsb_ros.core.store import list_levels

    bank = CodecBank("hecsb", CodecSettings(threads=1))
    assert bank.levels == list_levels("hecsb", "fmnist") and bank.default_level == default_level(
        "hecsb"
    )
    from hecsb_ros.core.store import level_path, read_manifest

    marked = [
        lv
        for lv in bank.levels
        if read_manifest(level_path("hecsb", "fmnist", lv))["selection"]["default"]
    ]
    assert marked == [bank.default_level]  # the one level the held-out selection marked
    image = np.zeros((28, 28), np.uint8)
    for level in (0, 6):
        frame = bank.codec(level).encode(image, "mono8")
        codec = bank.for_payload("hecsb", bank.codec(level).model_id, level)
        assert codec is bank.codec(level) and codec.decode(frame.data, ()).logits.shape == (10,)
    with pytest.raises(PayloadError, match="bad_rate"):
        bank.for_payload("hecsb", bank.codec(0).model_id, 1)  # level 0's encoder named as level 1
    with pytest.raises(PayloadError, match="model_mismatch"):
        bank.for_payload("hecsb", "0123456789abcdef", 2)
    with pytest.raises(PayloadError, match="unknown_codec"):
        bank.for_payload("svb", bank.codec(0).model_id, 0)
    jpeg = CodecBank("jpeg", CodecSettings(quality=50))
    assert (
        jpeg.for_payload("jpeg", "img-jpeg", 90) is jpeg.codec(50) and jpeg.codec(90).quality == 90
    )
    with pytest.raises(PayloadError, match="bad_rate"):
        jpeg.for_payload("jpeg", "img-jpeg", 101)
    one = CodecBank("jpeg", CodecSettings(quality=50), all_levels=False)
    assert (
        one.for_payload("jpeg", "img-jpeg", 50) is one.codec(50)
        and one.describe() == "quality 50 only"
    )
    with pytest.raises(PayloadError, match="bad_rate"):
        one.for_payload("jpeg", "img-jpeg", 90)
    single = CodecBank("hecsb", CodecSettings(threads=1, quality=2), all_levels=False)
    assert single.levels == [2]
    with pytest.raises(PayloadError, match="model_mismatch"):
        single.for_payload("hecsb", bank.codec(3).model_id, 3)
