"""The ImageNet / ResNet-50 path end to end, on random weights and a tiny image folder: every
learned codec trains against a local ResNet-50 split before ``layer3`` and deploys through the
codec registry with the ``teacher`` setting, taking camera frames of any size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hecsb_ros.core.codecs import CodecSettings, create_codec
from hecsb_ros.core.learned import SvbBottleneck, crbq_config_for, svb_config_for
from hecsb_ros.core.teachers import load_teacher

pytestmark = [pytest.mark.slow]


def load_resnet50(weights: Path):
    return load_teacher(f"resnet50:{weights}")


torch.set_num_threads(1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from torchvision.models import resnet50

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("resnet50") / "resnet50.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet") / "train"
    rng = np.random.default_rng(0)
    for cls in ("n01440764", "n01443537"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(
                root / cls / f"{i}.JPEG"
            )
    return root


@pytest.fixture(scope="module")
def trained(weights, folder, tmp_path_factory) -> dict[str, Path]:
    """One rate level of every learned codec, trained for a step or two on the folder."""
    from hecsb_ros.cli.train_baselines import main as train_baselines
    from hecsb_ros.cli.train_hecsb import main as train_hecsb

    out = tmp_path_factory.mktemp("out")
    common = [
        "--data",
        "imagenet-folder",
        str(folder),
        "--resnet50-weights",
        str(weights),
        "--batch-size",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert (
        train_hecsb(
            [
                "--beta",
                "0.001",
                "--stage1-epochs",
                "1",
                "--stage2-epochs",
                "1",
                "--acq-channels",
                "4",
                "4",
                "8",
                "--measurements",
                "2",
                "--decoder-channels",
                "8",
                "--prefix",
                "hecsb_resnet50",
            ]
            + common
        )
        == 0
    )
    assert (
        train_baselines(
            [
                "svb",
                "--beta",
                "0.001",
                "--latent-channels",
                "2",
                "--stage1-epochs",
                "1",
                "--stage2-epochs",
                "1",
            ]
            + common
        )
        == 0
    )
    assert train_baselines(["crbq", "--channels", "2", "--epochs", "1"] + common) == 0
    assert (
        train_baselines(
            ["factorized", "--lmbda", "0.01", "--N", "8", "--M", "8", "--epochs", "1"] + common
        )
        == 0
    )
    return {
        "hecsb": out / "hecsb_resnet50_r0.safetensors",
        "svb": out / "svb_resnet50_r0.safetensors",
        "crbq": out / "crbq_resnet50_r0.safetensors",
        "factorized": out / "factorized_resnet50_r0.safetensors",
    }


def test_split_geometry_follows_the_teacher(weights):
    teacher = load_resnet50(weights)
    svb = svb_config_for(teacher, 4)
    assert (svb.downsampling, svb.latent_size, svb.upsampling) == (3, (28, 28), 0)
    model = SvbBottleneck(svb).eval()
    with torch.no_grad():
        y = model.encode(torch.zeros(1, 3, 224, 224))
        assert y.shape == (1, 4, 28, 28) and model.g_phi(y).shape == (1, 512, 28, 28)
    crbq = crbq_config_for(teacher, 2)
    assert (len(crbq.widths), crbq.latent_size, crbq.upsampling) == (3, (28, 28), 0)


def test_every_learned_codec_trains_and_deploys_on_resnet50(trained, weights):
    # a VGA camera frame
    frame = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for codec, path in trained.items():
        manifest = json.loads(path.with_suffix(".json").read_text())
        assert manifest["test_images"] == 4, codec
        c = create_codec(codec, CodecSettings(checkpoint=str(path), teacher=str(weights)))
        assert len(c.classes) == 1000 and c.classes[0] == "tench"
        enc = c.encode(frame, "bgr8")
        assert 0 < len(enc.data) <= c.max_payload_bytes(), codec
        logits = c.decode(enc.data, enc.shape).logits
        assert logits.shape == (1000,) and torch.isfinite(logits).all(), codec


def test_a_split_refuses_another_teacher_and_says_which_setting_picks_it(trained):
    for codec in ("hecsb", "svb", "crbq"):
        with pytest.raises(ValueError, match="teacher.*ROS parameter 'teacher'"):
            # the shipped Fashion-MNIST one
            create_codec(codec, CodecSettings(checkpoint=str(trained[codec])))


def test_input_codecs_classify_with_the_teacher_setting(weights):
    c = create_codec("webp", CodecSettings(quality=50, teacher=str(weights)))
    enc = c.encode(np.zeros((300, 400, 3), np.uint8), "rgb8")
    assert enc.shape == (224, 224, 3)
    assert c.decode(enc.data, enc.shape).logits.shape == (1000,)


def test_a_folder_test_set_is_read_batch_by_batch(folder, weights):
    import argparse

    from hecsb_ros.cli.options import add_data_options, data_options
    from hecsb_ros.core.training.data import FolderImages
    from hecsb_ros.core.training.sources import data_sources

    p = argparse.ArgumentParser()
    add_data_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(
        ["--data", "imagenet-folder", str(folder), "--resnet50-weights", str(weights)]
    )
    _, test, val = data_sources(data_options(args), load_resnet50(weights), None)
    assert val is None and isinstance(test.x, FolderImages) and len(test.x) == len(test) == 4
    x = test.x[1:3]
    assert x.shape == (2, 3, 224, 224)
    assert torch.equal(x, test.batch(torch.tensor([1, 2]))[0])
    assert torch.equal(test.x[torch.tensor([3])], test.batch(torch.tensor([3]))[0])
