"""The light HECS-B head (codec ``hecsb_light``): EfficientNet-Lite0's layers to stride 2, then
depthwise-separable stride-2 convolutions to the split's grid, then W. Its multiply-accumulates are
counted (never timed here), its checkpoints keep the HECS-B format and serve in both codecs, and it
exports to ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hecsb_ros.core.bench.macs import count_macs
from hecsb_ros.core.learned import HecsbConfig, Split, model_class, read_learned, save_learned
from hecsb_ros.core.teachers import load_teacher
from hecsb_ros.core.training.config import HecsbOptions
from hecsb_ros.core.training.data import TensorSource
from hecsb_ros.core.training.recipes import TrainJob, _hecsb_start, hecsb_config

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lite0():
    return load_teacher("efficientnet-lite0")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.fixture(scope="module")
def light_path(lite0, images, tmp_path_factory) -> Path:
    """An untrained light level, started as the recipe starts it, saved as a shipped level would
    be."""
    job = TrainJob(
        "hecsb_light",
        1e-3,
        0,
        lite0,
        TensorSource(images, torch.zeros(4, dtype=torch.int64)),
        HecsbOptions(),
        log=lambda s: None,
    )
    model, _ = _hecsb_start(job)
    model.update()
    return save_learned(
        tmp_path_factory.mktemp("light") / "hecsb_light_effl0_r0.safetensors",
        model.eval(),
        lite0.model_id,
        {"beta": 1e-3, "rate_level": "0"},
    )


def test_the_light_config_builds_under_the_mac_bound(lite0):
    config = hecsb_config(lite0, HecsbOptions(), "hecsb_light")
    assert (config.stem, config.stem_stride, config.separable, config.latent_shape) == (
        "efficientnet_lite0",
        2,
        True,
        (32, 28, 28),
    )
    assert config.linear_inverse and config.latent_l == 40
    assert (
        HecsbConfig.from_json(config.to_json()) == config
        and '"separable": true' in config.to_json()
    )
    standard = hecsb_config(lite0, HecsbOptions())
    # the standard head's configs read and hash as before
    assert "separable" not in standard.to_json()
    light, heavy = model_class("hecsb_light")(config).eval(), model_class("hecsb")(standard).eval()
    x = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        macs, y = count_macs(light.encode, x)
        teacher_head, h = count_macs(lite0.model.head, x)
        # f_psi reproduces the split's shape
        assert light.f_psi(x).shape == h.shape == (1, 40, 28, 28)
        assert count_macs(heavy.encode, x)[0] > teacher_head
    assert y.shape == (1, 32, 28, 28)
    assert macs <= 35e6 and macs <= 0.30 * teacher_head, (macs, teacher_head)
    depthwise = [m for m in light.f_psi.net if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    # dw, relu, pw (x2)
    assert [m.stride for m in depthwise] == [(2, 2), (2, 2)] and len(light.f_psi.net) == 7
    with pytest.raises(ValueError, match="effl0"):  # no light head for a teacher without an entry
        hecsb_config(load_teacher(None), HecsbOptions(), "hecsb_light")


def test_the_light_head_starts_from_the_teachers_layers_and_keeps_the_checkpoint_format(
    lite0, images, light_path
):
    model, meta, tail = read_learned(light_path)
    assert meta["kind"] == "hecsb_light" and meta["format"] == "hecsb_ros.hecsb/1" and not tail
    assert json.loads(meta["config"])["separable"] is True
    teacher_state = lite0.model.head.state_dict()
    stem_state = model.f_psi.stem.state_dict()
    assert stem_state.keys() <= teacher_state.keys()  # the teacher's stem and block 0 ...
    # ... with its weights
    assert all(torch.equal(v, teacher_state[k]) for k, v in stem_state.items())
    # a light level is a HECS-B: both codec kinds load it; a standard level is not a light one
    for kind in ("hecsb_light", "hecsb", None):
        split = Split.load(light_path, lite0, kind=kind)
        assert split.kind == "hecsb_light" and split.model.config == model.config
    heavy = model_class("hecsb")(hecsb_config(lite0, HecsbOptions()))
    heavy.update()
    standard = save_learned(
        light_path.parent / "hecsb_effl0_r0.safetensors", heavy.eval(), lite0.model_id
    )
    assert "kind" not in read_learned(standard)[1]  # standard files are written as before
    with pytest.raises(ValueError, match="not a hecsb_light checkpoint"):
        Split.load(standard, lite0, kind="hecsb_light")
    with torch.no_grad():
        y = split.latent(images[:2])
    assert y.shape == (2, 32, 28, 28)
    payload = split.payload(y[0])
    assert torch.equal(split.coder.decode(payload), split.coder.quantize(y[0]))
    assert split.decode(payload).shape == (1000,)


def test_codecs_hecsb_and_hecsb_light_serve_a_light_level(lite0, light_path):
    from hecsb_ros.core.codecs import CodecSettings, create_codec

    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    light = create_codec(
        "hecsb_light", CodecSettings(checkpoint=str(light_path), teacher="efficientnet_lite0")
    )
    plain = create_codec(
        "hecsb", CodecSettings(checkpoint=str(light_path), teacher="efficientnet_lite0")
    )
    assert light.model_id == plain.model_id and light.quality == plain.quality == 0
    enc = light.encode(frame, "rgb8")
    assert enc.data == plain.encode(frame, "rgb8").data
    assert torch.equal(
        light.decode(enc.data, enc.shape).logits, plain.decode(enc.data, enc.shape).logits
    )
    # no shipped light levels in an empty folder
    with pytest.raises(FileNotFoundError, match="--head light"):
        read_learned(light_path.parent / "missing.safetensors", kind="hecsb_light")


@pytest.mark.slow
def test_the_light_head_exports_to_onnx(lite0, light_path, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from hecsb_ros.core.onnx_export import check_folder, export_split

    manifest = export_split(Split.load(light_path, lite0), tmp_path / "onnx")
    assert (
        manifest["kind"] == "hecsb_light"
        and check_folder(tmp_path / "onnx")["kind"] == "hecsb_light"
    )
    edge, server = manifest["networks"]["edge"], manifest["networks"]["server"]
    assert edge["output"]["shape"] == ["N", 32, 28, 28] and server["output"]["shape"] == [
        "N",
        1000,
    ]
    assert edge["max_abs_diff_vs_torch"] < 1e-3 and server["max_abs_diff_vs_torch"] < 1e-2


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """Four real photos (scikit-learn's two sample images and their left halves)."""
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    root = tmp_path_factory.mktemp("photos") / "photos"
    root.mkdir()
    for name, img in zip(data.filenames, data.images):
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(root / f"{Path(name).stem}.jpg"), bgr)
        cv2.imwrite(str(root / f"{Path(name).stem}_half.png"), bgr[:, :320])
    return root


@pytest.mark.slow
def test_train_hecsb_head_light_on_a_pool_with_budget_resume_and_ledger(
    lite0, photo_folder, tmp_path
):
    """--head light end to end on a photo pool: budgeted, resumable, in the ledger, saved as
    hecsb_light_effl0_r0; with --freeze-stem on cached crops the stride-2 stem runs (its output is
    not the cached split features)."""
    import csv

    from hecsb_ros.cli.train_hecsb import main as train_hecsb

    (tmp_path / "eval.csv").write_text(f"file,class_index\n{photo_folder / 'flower.jpg'},985\n")
    common = [
        "--head",
        "light",
        "--teacher",
        "efficientnet_lite0",
        "--test-list",
        str(tmp_path / "eval.csv"),
        "--cache",
        str(tmp_path / "cache"),
        "--crops",
        "1",
        "--val-images",
        "1",
        "--batch-size",
        "2",
        "--beta",
        "1e-3",
        "--alpha",
        "1.0",
        "--stage2-rate-weight",
        "1",
        "--no-progress",
        "--ledger",
        str(tmp_path / "ledger.csv"),
    ]
    assert (
        train_hecsb(
            common
            + [
                "--data",
                "pool",
                str(photo_folder),
                "--budget-min",
                "0.1",
                "--epoch-max-min",
                "0.05",
                "--resume",
                "--out",
                str(tmp_path / "pool"),
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "pool" / "hecsb_light_effl0_r0.json").read_text())
    assert manifest["kind"] == "hecsb_light" and manifest["config"]["separable"] is True
    assert manifest["train_pool"] and manifest["samples_seen"] > 0 and manifest["core_hours"] >= 0
    assert manifest["distill"]["stage1_epochs"] >= 1 and "val_accuracy" in manifest
    assert not (tmp_path / "pool" / "hecsb_light_effl0_r0.train_state.pt").exists()
    assert (
        Split.load(tmp_path / "pool" / "hecsb_light_effl0_r0.safetensors", lite0).kind
        == "hecsb_light"
    )
    assert (
        train_hecsb(
            common
            + [
                "--data",
                "photos",
                str(photo_folder),
                "--freeze-stem",
                "--stage1-epochs",
                "1",
                "--stage2-epochs",
                "1",
                "--out",
                str(tmp_path / "crops"),
            ]
        )
        == 0
    )
    frozen = read_learned(tmp_path / "crops" / "hecsb_light_effl0_r0.safetensors")[0]
    stem = frozen.f_psi.stem.state_dict()
    assert all(
        torch.equal(v, lite0.model.head.state_dict()[k])
        for k, v in stem.items()
        if v.is_floating_point()
    )
    rows = list(csv.DictReader((tmp_path / "ledger.csv").open()))
    assert [r["kind"] for r in rows] == ["hecsb_light", "hecsb_light"] and rows[0]["train_pool"]
