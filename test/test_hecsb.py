"""HECS-B bottleneck: shapes, entropy coding (exact, fresh process, hostile bytes), codec
contract."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from hecsb_ros.core.entropy import LatentCoder
from hecsb_ros.core.learned import (
    HecsbBottleneck,
    HecsbConfig,
    Split,
    rate_bits,
    read_learned,
    save_learned,
)
from hecsb_ros.core.payload import PayloadError

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)

FMNIST_CFG = HecsbConfig(
    1, (28, 28), 32, (14, 14), acq_channels=(8, 12), measurements=2, decoder_channels=16
)


def _updated(cfg: HecsbConfig = FMNIST_CFG, seed: int = 0) -> HecsbBottleneck:
    torch.manual_seed(seed)
    model = HecsbBottleneck(cfg)
    model.update()
    return model.eval()


def test_shapes_fmnist():
    model = HecsbBottleneck(FMNIST_CFG)
    x = torch.randn(3, 1, 28, 28)
    h, lik = model(x)
    assert h.shape == (3, 32, 14, 14) and lik.shape == (3, 2, 7, 7)
    assert FMNIST_CFG.latent_shape == (2, 7, 7) and FMNIST_CFG.latent_l == 12
    assert rate_bits(lik).shape == (3,) and bool((rate_bits(lik) > 0).all())
    with pytest.raises(ValueError):
        # m < l violated
        HecsbConfig(1, (28, 28), 32, (14, 14), acq_channels=(8, 2), measurements=2)


def test_spatial_measurement_measures_every_position_with_the_same_matrix():
    from hecsb_ros.core.measurement import MeasurementOperator

    torch.manual_seed(0)
    op = MeasurementOperator(6, 3, spatial=True)
    x = torch.randn(2, 6, 5, 4, requires_grad=True)
    y = op(x)
    expected = torch.einsum("ml,nlhw->nmhw", op.weight, x)
    assert y.shape == (2, 3, 5, 4) and torch.allclose(y, expected, atol=1e-6)
    assert torch.allclose(y[1, :, 2, 3], op.weight @ x[1, :, 2, 3], atol=1e-6)
    y.sum().backward()  # gradients reach W and the input as for the einsum
    assert torch.allclose(x.grad, op.weight.sum(0)[None, :, None, None].expand_as(x))


def test_decoder_blocks_and_edge_transfer():
    from dataclasses import replace

    torch.manual_seed(0)
    base = HecsbBottleneck(FMNIST_CFG)
    deeper = HecsbBottleneck(replace(FMNIST_CFG, decoder_blocks=2))
    n_params = lambda m: sum(p.numel() for p in m.g_phi.parameters())  # noqa: E731
    assert n_params(deeper) > n_params(base)
    x = torch.randn(2, 1, 28, 28)
    assert deeper(x)[0].shape == (2, 32, 14, 14)
    deeper.load_edge_state_(base)
    with torch.no_grad():
        assert torch.equal(deeper.encode(x), base.encode(x))
    other = HecsbBottleneck(replace(FMNIST_CFG, measurements=3))
    with pytest.raises(ValueError, match="edge architectures differ"):
        other.load_edge_state_(base)
    # checkpoints written before decoder_blocks existed read as 0 blocks
    legacy = json.loads(FMNIST_CFG.to_json())
    del legacy["decoder_blocks"]
    assert HecsbConfig.from_json(json.dumps(legacy)) == FMNIST_CFG


def test_grown_keeps_the_trained_measurements_and_reaches_the_new_ones():
    torch.manual_seed(0)
    base = HecsbBottleneck(FMNIST_CFG)
    grown = base.grown(3, torch.Generator().manual_seed(1))
    assert grown.config.measurements == 3 and grown.config.latent_shape == (3, 7, 7)
    assert grown.measure.frobenius_norm() <= grown.config.norm_bound + 1e-5
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        y_base, y_grown = base.encode(x), grown.encode(x)
        # no projection: old rows unchanged
        if base.measure.frobenius_norm() <= grown.config.norm_bound * 0.99:
            assert torch.equal(y_grown[:, :2], y_base)
        assert y_grown[:, 2].abs().sum() > 0
        assert torch.equal(grown.g_phi.net[0].weight[:, :2], base.g_phi.net[0].weight)
        assert torch.equal(
            grown.entropy_bottleneck.matrices[0][:2], base.entropy_bottleneck.matrices[0]
        )
    # gradients reach the new row of W through the decoder (straight-through rounding)
    h_hat, _ = grown(x, mode="ste")
    h_hat.square().mean().backward()
    assert grown.measure.weight.grad[2].abs().sum() > 0
    with pytest.raises(ValueError, match="only add"):
        base.grown(2)


def test_widened_computes_the_same_latent_and_trains_the_new_filters():
    torch.manual_seed(0)
    base = HecsbBottleneck(FMNIST_CFG).eval()
    wide = base.widened((24, 40)).eval()
    assert (
        wide.config.acq_channels == (24, 40)
        and wide.config.latent_shape == base.config.latent_shape
    )
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(wide.encode(x), base.encode(x), atol=1e-5)
        assert torch.allclose(wide(x, mode="round")[0], base(x, mode="round")[0], atol=1e-4)
    assert wide.measure.frobenius_norm() <= wide.config.norm_bound + 1e-5
    h_hat, _ = wide.train()(x, mode="ste")
    h_hat.square().mean().backward()
    convs = [m for m in wide.f_psi.net if isinstance(m, torch.nn.Conv2d)]
    # new columns of W
    assert wide.measure.weight.grad[:, FMNIST_CFG.acq_channels[-1] :].abs().sum() > 0
    # reads the new filters
    assert convs[1].weight.grad[:, FMNIST_CFG.acq_channels[0] :].abs().sum() > 0
    with pytest.raises(ValueError, match="widen"):
        base.widened((4, 40))  # narrower first layer


def test_shapes_resnet50_split():
    from hecsb_ros.core.teachers import build_model, resnet50_spec

    torch.manual_seed(0)
    teacher = build_model(resnet50_spec()).eval()
    cfg = HecsbConfig(
        3, (224, 224), 512, (28, 28), acq_channels=(8, 8, 16), measurements=4, decoder_channels=16
    )
    model = HecsbBottleneck(cfg).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        h_hat, lik = model(x, mode="round")
        assert h_hat.shape == teacher.head(x).shape == (1, 512, 28, 28)
        assert lik.shape == (1, 4, 28, 28)
        assert teacher.tail(h_hat).shape == (1, 1000)


def test_quantisation_modes():
    model = _updated()
    with torch.no_grad():
        y = model.encode(torch.randn(2, 1, 28, 28) * 3)
        noisy, _ = model.quantize(y, "noise")
        rounded, _ = model.quantize(y, "round")
    assert float((noisy - y).abs().max()) <= 0.5 and not torch.equal(noisy, y)
    med = model.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
    # integers around medians
    assert float(((rounded - med) - torch.round(rounded - med)).abs().max()) < 1e-5
    assert float((rounded - y).abs().max()) <= 0.5 + 1e-6
    y = y.clone().requires_grad_(True)
    ste, _ = model.quantize(y, "ste")
    assert torch.allclose(ste, rounded)
    ste.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))  # straight-through gradient
    with pytest.raises(ValueError):
        model.quantize(y, "floor")


def test_coder_round_trip_exact_and_matches_compressai():
    model = _updated()
    eb = model.entropy_bottleneck
    coder = LatentCoder(eb, FMNIST_CFG.latent_shape)
    y = model.encode(torch.randn(4, 1, 28, 28)).detach()
    for i in range(4):
        data, z = coder.encode(y[i])
        assert 1 <= len(data) <= coder.max_payload_bytes()
        assert torch.equal(coder.decode(data), z)
        # the same latent as CompressAI's own (rANS) compress / decompress
        assert torch.equal(eb.decompress(eb.compress(y[i : i + 1]), y.shape[2:])[0], z)
        assert torch.equal(z, model.quantize(y[i : i + 1], "round")[0][0])
        # within a byte or two of the tables' estimate -log2 p
        s = coder.symbols(y[i]).reshape(-1).tolist()
        bits = 0.0
        for v, t in zip(s, coder.indexes.flat):
            cdf, k = coder.table._cdfs[t], v - coder.table._offsets[t]
            bits -= math.log2((cdf[k + 1] - cdf[k]) / 65536)
        assert len(data) <= math.ceil(bits / 8) + 2
    # latents far outside the tables are clamped, never escape-coded, and stay in the size bound
    data, z = coder.encode(y[0] * 1000)
    assert len(data) <= coder.max_payload_bytes() and torch.equal(coder.decode(data), z)


def test_coder_needs_tables():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="update"):
        LatentCoder(HecsbBottleneck(FMNIST_CFG).entropy_bottleneck, FMNIST_CFG.latent_shape)


def test_hostile_payloads_raise_payload_error():
    model = _updated()
    coder = LatentCoder(model.entropy_bottleneck, FMNIST_CFG.latent_shape)
    rng = random.Random(0)
    reasons = set()
    for _ in range(1500):
        n = rng.choice([0, 1, 3, 4, 5, 8, 12, 16, 24, 28, 32, 64, 100, 200, 5000])
        try:
            coder.decode(bytes(rng.getrandbits(8) for _ in range(n)))
        except PayloadError as exc:
            reasons.add(exc.reason)
    assert (
        reasons <= {"truncated", "decode_error"}
        and "decode_error" in reasons
        and "truncated" in reasons
    )
    y = model.encode(torch.randn(1, 1, 28, 28) * 3).detach()[0]
    data, _ = coder.encode(y)
    # truncations and single bit flips: rejected, or (the arithmetic code has little redundancy)
    # the exact, canonical payload of another latent
    truncations = flips = 0
    for k in range(len(data)):
        try:
            s = coder.decode_symbols(data[:k])
        except PayloadError as exc:
            assert exc.reason in ("truncated", "decode_error")
            truncations += 1
            continue
        assert coder.encode_symbols(s) == data[:k]
    for k in range(len(data) * 8):
        bad = bytearray(data)
        bad[k // 8] ^= 1 << (k % 8)
        try:
            s = coder.decode_symbols(bytes(bad))
        except PayloadError:
            flips += 1
            continue
        assert s.shape == FMNIST_CFG.latent_shape and coder.encode_symbols(s) == bytes(bad)
    assert truncations > len(data) // 2 and flips > len(data) * 4


def test_checkpoint_carries_tables_and_decodes_in_fresh_process(tmp_path):
    model = _updated(seed=3)
    path = save_learned(tmp_path / "b.safetensors", model, "0123456789abcdef", {"beta": "0.1"})
    loaded, meta, _ = read_learned(path)
    assert meta["teacher_model_id"] == "0123456789abcdef" and meta["beta"] == "0.1"
    for name in ("_quantized_cdf", "_offset", "_cdf_length"):
        assert torch.equal(
            getattr(loaded.entropy_bottleneck, name), getattr(model.entropy_bottleneck, name)
        )
    coder = LatentCoder(model.entropy_bottleneck, FMNIST_CFG.latent_shape)
    y = model.encode(torch.randn(1, 1, 28, 28) * 2).detach()[0]
    data, z = coder.encode(y)
    (tmp_path / "payload.bin").write_bytes(data)
    script = textwrap.dedent(f"""
        import sys, torch
        from hecsb_ros.core.entropy import LatentCoder
        from hecsb_ros.core.learned import read_learned
        model, _, _ = read_learned({str(path)!r})
        coder = LatentCoder(model.entropy_bottleneck, model.config.latent_shape)
        z = coder.decode(open({str(tmp_path / 'payload.bin')!r}, 'rb').read())
        open({str(tmp_path / 'z.bin')!r}, 'wb').write(z.numpy().tobytes())
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    assert (tmp_path / "z.bin").read_bytes() == z.numpy().tobytes()
    with pytest.raises(ValueError, match="update"):
        save_learned(tmp_path / "c.safetensors", HecsbBottleneck(FMNIST_CFG), "0123456789abcdef")


# -- codec ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bottleneck_files(tmp_path_factory):
    """Two untrained bottlenecks for the shipped teacher (different weights, so different ids)."""
    from hecsb_ros.core.teachers import load_teacher

    teacher = load_teacher()
    folder = tmp_path_factory.mktemp("hecsb")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        with torch.no_grad():
            h = teacher.model.head(torch.zeros(1, 1, 28, 28))
        cfg = HecsbConfig(
            1, (28, 28), h.shape[1], tuple(h.shape[2:]), acq_channels=(8, 12), decoder_channels=16
        )
        model = HecsbBottleneck(cfg)
        model.update()
        paths.append(save_learned(folder / f"b{seed}.safetensors", model, teacher.model_id))
    return paths


def test_codec_round_trip_and_shape_contract(bottleneck_files):
    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.core.datasets import FASHION_MNIST_CLASSES

    codec = create_codec("hecsb", CodecSettings(checkpoint=str(bottleneck_files[0]), threads=1))
    assert codec.classes == FASHION_MNIST_CLASSES and len(codec.model_id) == 16
    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    frame = codec.encode(image, "mono8")
    assert frame.shape == () and isinstance(frame.data, bytes)
    assert {"preprocess", "encode", "entropy"} <= set(frame.timings_ms)
    out = codec.decode(frame.data, frame.shape)
    assert out.logits.shape == (10,) and {"decode", "infer"} <= set(out.timings_ms)
    from hecsb_ros.core.teachers import images_to_tensor

    x = images_to_tensor(image[..., None], codec.spec)
    assert torch.allclose(out.logits, codec.split.logits_rounded(x)[0], atol=1e-5)
    # a camera frame of another size and encoding goes through preprocessing
    assert codec.encode(np.zeros((60, 80, 3), np.uint8), "bgr8").shape == ()
    with pytest.raises(PayloadError) as info:
        codec.check_shape((2, 7, 7))
    assert info.value.reason == "bad_shape"
    with pytest.raises(PayloadError) as info:
        codec.decode(frame.data[:-4], ())
    assert info.value.reason in ("truncated", "decode_error")
    with pytest.raises(PayloadError) as info:
        codec.decode(b"\xff" * (codec.max_payload_bytes() + 4), ())
    assert info.value.reason == "too_large"
    with pytest.raises(PayloadError):
        codec.encode(image, "rgba8")


def test_server_with_other_model_id_refuses(bottleneck_files):
    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.core.codecs import validate_payload

    edge = create_codec("hecsb", CodecSettings(checkpoint=str(bottleneck_files[0])))
    server = create_codec("hecsb", CodecSettings(checkpoint=str(bottleneck_files[1])))
    assert edge.model_id != server.model_id
    frame = edge.encode(np.zeros((28, 28), np.uint8), "mono8")
    validate_payload(
        edge, "hecsb", edge.model_id, edge.quality, frame.shape, len(frame.data), 1 << 20
    )
    with pytest.raises(PayloadError) as info:
        validate_payload(
            server, "hecsb", edge.model_id, server.quality, frame.shape, len(frame.data), 1 << 20
        )
    assert info.value.reason == "model_mismatch"


def test_bottleneck_for_other_teacher_is_refused(tmp_path):
    model = _updated()
    path = save_learned(tmp_path / "b.safetensors", model, "ffffffffffffffff")
    with pytest.raises(ValueError, match="teacher"):
        Split.load(path)


def test_evaluation_cli_writes_results(bottleneck_files, tmp_path, missing_data):
    import csv
    import shutil

    from hecsb_ros.cli.evaluate_hecsb import main
    from hecsb_ros.core.datasets import DatasetNotFound, load_fashion_mnist

    try:
        load_fashion_mnist("test")
    except DatasetNotFound as exc:
        missing_data(exc)
    shutil.copy(bottleneck_files[0], tmp_path / "t_r0.safetensors")
    shutil.copy(bottleneck_files[1], tmp_path / "t_r1.safetensors")
    assert (
        main(
            [
                "--checkpoints",
                str(tmp_path),
                "--prefix",
                "t",
                "--limit",
                "40",
                "--timing-runs",
                "3",
                "--out-dir",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert [r["level"] for r in rows] == ["0", "1"] and rows[0]["test_images"] == "40"
    for r in rows:
        assert (
            float(r["bytes_mean"]) >= 8 and float(r["edge_ms"]) > 0 and float(r["teacher_ms"]) > 0
        )
        assert (
            abs(float(r["real_over_est"]) - float(r["bytes_mean"]) / float(r["est_bytes_mean"]))
            < 1e-3
        )
    text = (tmp_path / "out" / "results.md").read_text()
    assert "| level | beta |" in text and rows[0]["model_id"] in text


def test_shipped_rate_levels_match_manifests_and_classify(missing_data):
    import json

    from hecsb_ros.core.codecs import create_codec
    from hecsb_ros.core.codecs.learned import default_level
    from hecsb_ros.core.datasets import DatasetNotFound, load_fashion_mnist
    from hecsb_ros.core.store import level_path, list_levels, model_id_of

    def rate_level_path(lv: int):
        return level_path("hecsb", "fmnist", lv)

    levels = list_levels("hecsb", "fmnist")
    default = default_level("hecsb")
    assert len(levels) >= 4 and default in levels
    manifests = [json.loads(rate_level_path(lv).with_suffix(".json").read_text()) for lv in levels]
    for lv, m in zip(levels, manifests):
        assert m["rate_level"] == lv and m["model_id"] == model_id_of(rate_level_path(lv))
    sizes = {lv: m["mean_payload_bytes"] for lv, m in zip(levels, manifests)}
    assert sizes[levels[0]] == min(sizes.values())  # the lowest level sends the fewest bytes
    codec = create_codec("hecsb")
    assert (
        codec.quality == default and codec.model_id == manifests[levels.index(default)]["model_id"]
    )
    try:
        test = load_fashion_mnist("test").subset(300)
    except DatasetNotFound as exc:
        missing_data(exc)
    correct, total_bytes = 0, 0
    for image, label in zip(test.images, test.labels):
        frame = codec.encode(image, "mono8")
        total_bytes += len(frame.data)
        correct += int(codec.decode(frame.data, frame.shape).logits.argmax()) == int(label)
    assert correct / len(test) >= manifests[levels.index(default)]["test_accuracy"] - 0.05
    # the arithmetic-coded payload is close to the prior's estimate, and never above the recorded
    # size (manifests measured with the former rANS coder record about 6 B more)
    mean_bytes = total_bytes / len(test)
    assert abs(mean_bytes - manifests[levels.index(default)]["estimated_bytes_mean"]) < 2.5
    assert mean_bytes < sizes[default] + 2
