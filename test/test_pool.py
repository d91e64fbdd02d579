"""The photo pool of long camera-scale runs: fresh views, unlabelled distillation, budgeted epochs
that resume from their state with the work counted, and the training ledger."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hecsb_ros.core.learned import HecsbBottleneck, HecsbConfig
from hecsb_ros.core.teachers import Classifier, build_model, fmnist_spec
from hecsb_ros.core.training.config import DataOptions
from hecsb_ros.core.training.distill import DistillConfig, Distiller
from hecsb_ros.core.training.ledger import LEDGER_FIELDS, append_ledger
from hecsb_ros.core.training.pool import PhotoPool

torch.set_num_threads(1)
CFG = HecsbConfig(
    1, (28, 28), 8, (14, 14), acq_channels=(8, 12), measurements=2, decoder_channels=16
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> list[Path]:
    """Two photo folders (40 + 24 random 160 x 200 photos, one unreadable file, one thumbnail) and
    a video."""
    root = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    out = []
    for name, n in (("street", 40), ("kitchen", 24)):
        folder = root / name
        folder.mkdir()
        for i in range(n):
            cv2.imwrite(
                str(folder / f"{i:03d}.jpg"), rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
            )
        out.append(folder)
    (out[0] / "broken.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(out[1] / "thumb.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    video = root / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (200, 160))
    for _ in range(30):
        writer.write(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8))
    writer.release()
    return [*out, video]


@pytest.fixture(scope="module")
def teacher() -> Classifier:
    torch.manual_seed(0)
    spec = fmnist_spec()
    return Classifier(spec, build_model(spec, widths=(4, 8, 8)).eval(), "0" * 16, Path("none"))


def test_pool_lists_sources_and_gives_fresh_views(folders, teacher, tmp_path):
    pool = PhotoPool(folders, teacher.spec, frames_dir=tmp_path / "frames", video_every=10)
    assert pool.composition() == {"street": 41, "kitchen": 25, "clip.avi": 3}
    assert len(list((tmp_path / "frames").rglob("*.jpg"))) == 3
    again = PhotoPool(folders, teacher.spec, frames_dir=tmp_path / "frames", video_every=10)
    assert again.version == pool.version and pool.version.startswith("69-")
    assert PhotoPool(folders[:1], teacher.spec).version != pool.version
    gen = torch.Generator().manual_seed(0)
    idx = torch.arange(len(pool))  # every row, the unreadable file and the thumbnail included
    x1, y1 = pool.batch(idx, gen)
    x2, _ = pool.batch(idx, gen)
    assert x1.shape == (len(pool), 1, 28, 28) and (y1 == -1).all()
    assert not torch.equal(x1, x2)  # a new draw is a new view
    x3, _ = pool.batch(idx, torch.Generator().manual_seed(0))
    assert torch.equal(x1, x3)  # the same random state gives the same views


def test_split_holds_out_whole_photos_the_same_way_every_time(folders, teacher, tmp_path):
    pool = PhotoPool(folders[:2], teacher.spec)
    rest, held = pool.split(6)
    rest2, held2 = PhotoPool(folders[:2], teacher.spec).split(6)
    assert held == held2 and len(held) == 6 and len(rest) == len(pool) - 6
    assert not set(map(str, held)) & set(rest.sources())
    with pytest.raises(ValueError, match="cannot hold out"):
        pool.split(len(pool))


def _distiller(teacher, pool, state, **kw) -> Distiller:
    torch.manual_seed(0)
    cfg = DistillConfig(beta=1e-3, stage1_epochs=1, stage2_epochs=2, batch_size=8, mixup=0.5, **kw)
    return Distiller(
        HecsbBottleneck(CFG),
        teacher,
        pool,
        cfg,
        state_path=state,
        progress=False,
        log=lambda s: None,
    )


def test_budgeted_run_splits_epochs_resumes_and_counts_its_work(folders, teacher, tmp_path):
    pool = PhotoPool(folders[:2], teacher.spec)
    state = tmp_path / "level.train_state.pt"
    d = _distiller(teacher, pool, state)
    cfg = d.fit_budget(0.05, steps=2, max_epoch_min=1e-6)  # 3 s in all, epochs as short as can be
    assert d.steps_per_epoch == 1 and cfg.stage1_epochs > 1 and cfg.stage2_epochs > 2
    # timing steps are work, not samples
    assert d.work["cpu_seconds"] > 0 and d.work["samples"] == 0
    assert int(d.teacher_top1.sum()) == 0  # nor are their views counted as training views
    total = cfg.stage1_epochs + cfg.stage2_epochs
    stop = cfg.stage1_epochs + 1  # stopped after the first stage-2 epoch

    class Stop(Exception):
        pass

    real = d._save_state

    def save_then_maybe_stop(*a):
        real(*a)
        if d.epoch == stop:
            raise Stop

    d._save_state = save_then_maybe_stop
    with pytest.raises(Stop):
        d.run()
    done = dict(d.work)
    assert done["samples"] == stop * d.steps_per_epoch * 8
    # A new process: the unfitted settings, resumed from the state, which keeps the fitted epochs.
    d2 = _distiller(teacher, pool, state)
    d2.run(resume=True)
    assert d2.cfg == cfg and d2.epoch == total
    assert d2.work["samples"] == total * d.steps_per_epoch * 8
    assert d2.work["cpu_seconds"] > done["cpu_seconds"]
    assert 0 < int(d2.teacher_top1.sum()) <= (total - cfg.stage1_epochs) * d.steps_per_epoch * 8
    # the teacher's own tail is not saved
    assert "tail" not in torch.load(state, weights_only=True)
    with pytest.raises(ValueError, match="other settings"):
        _distiller(teacher, pool, state, lr2=1e-2).run(resume=True)


def test_a_budget_shorter_than_the_configured_epochs_keeps_their_ratio(folders, teacher):
    # stage 1 : stage 2 = 1 : 2
    d = _distiller(teacher, PhotoPool(folders[:2], teacher.spec), None)
    cfg = d.fit_budget(1e-5, steps=2)
    assert (cfg.stage1_epochs, cfg.stage2_epochs) == (1, 2) and cfg.epoch_fraction < 1


def test_ledger_appends_one_row_per_level(tmp_path):
    ledger = tmp_path / "training" / "ledger.csv"
    manifest = {
        "kind": "hecsb",
        "rate_level": 2,
        "beta": 1e-4,
        "core_hours": 0.5,
        "device_minutes": 0.0,
        "samples_seen": 1234,
        "train_pool": "69-abc",
        "teacher_classes_seen": 9,
        "val_accuracy": 0.5,
        "test_accuracy": 0.6,
        "mean_payload_bytes": 1000.0,
    }
    append_ledger(ledger, manifest, Path("hecsb_effl0_r1.safetensors"))
    append_ledger(ledger, {**manifest, "rate_level": 3}, None)
    rows = list(csv.DictReader(ledger.open()))
    assert tuple(rows[0]) == LEDGER_FIELDS and len(rows) == 2
    assert rows[0]["init"] == "hecsb_effl0_r1.safetensors" and rows[0]["value"] == "0.0001"
    assert rows[1]["rate_level"] == "3" and rows[1]["samples_seen"] == "1234" and rows[1]["commit"]


def test_options_build_the_pool_and_hold_out_crops(folders, teacher, tmp_path, monkeypatch):
    from hecsb_ros.core.training import sources

    data = DataOptions(
        ("pool", *map(str, folders[:2])), cache=tmp_path / "cache", val_images=4, progress=False
    )
    train, val = sources.pool_split(data, teacher, log=lambda s: None)
    # 2 fixed crops of each held-out photo, teacher outputs cached
    assert len(train) == 66 - 4 and len(val) == 8
    assert set(val.targets(torch.arange(2))) == {"features", "logits"}
    with pytest.raises(ValueError, match="needs a test list"):
        sources.data_sources(data, teacher, None)


def test_ledger_command_totals_finished_and_running_levels(folders, teacher, tmp_path, capsys):
    from hecsb_ros.cli import ledger as ledger_cli

    manifest = {
        "kind": "hecsb",
        "rate_level": 1,
        "beta": 3e-4,
        "core_hours": 2.0,
        "device_minutes": 0.0,
        "samples_seen": 1000,
        "train_pool": "69-abc",
        "teacher_classes_seen": 9,
        "val_accuracy": 0.5,
        "test_accuracy": 0.6,
        "mean_payload_bytes": 1000.0,
    }
    append_ledger(tmp_path / "ledger.csv", manifest, None)
    (tmp_path / "hecsb").mkdir()
    d = _distiller(
        teacher,
        PhotoPool(folders[:2], teacher.spec),
        tmp_path / "hecsb" / "hecsb_x_r2.train_state.pt",
    )
    d.cfg = DistillConfig(**{**d.cfg.__dict__, "stage2_epochs": 1, "stage1_epochs": 1})
    d.run()
    capsys.readouterr()
    assert ledger_cli.main([str(tmp_path), "--out", str(tmp_path / "LEDGER.md")]) == 0
    text = (tmp_path / "LEDGER.md").read_text()
    assert text == capsys.readouterr().out
    running = ledger_cli.in_progress(tmp_path)
    assert (
        len(running) == 1
        and running[0]["epochs"] == "2 of 2"
        and running[0]["samples_seen"] == 2 * (66 // 8) * 8
    )
    total = 2.0 + running[0]["core_hours"]
    assert f"| hecsb | {total:.2f} | 0.0 | {1000 + 128:,} |" in text
    assert ledger_cli.main([str(tmp_path / "missing")]) == 2


def test_a_frozen_stem_that_is_the_teachers_head_runs_once_per_batch(tmp_path):
    """SVB with the teacher's layers frozen: on fresh views the teacher's head runs once and is the
    stem's output too (the same latents as running the stem); a stem that differs is run itself."""
    from hecsb_ros.core.learned.stem import load_stem_
    from hecsb_ros.core.learned.svb import SvbBottleneck, svb_config_for
    from hecsb_ros.core.teachers import load_teacher

    teacher = load_teacher("efficientnet_lite0")
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (240, 260, 3), dtype=np.uint8))
    pool = PhotoPool([folder], teacher.spec)
    model = SvbBottleneck(svb_config_for(teacher, 4, stem=True))
    load_stem_(model.g_a[0], teacher.model.head, model.config.stem, log=lambda s: None)
    cfg = DistillConfig(
        beta=1e-3, stage1_epochs=1, stage2_epochs=1, batch_size=4, freeze_stem=True, mixup=1.0
    )
    d = Distiller(model, teacher, pool, cfg, progress=False, log=lambda s: None)
    assert d._stem_is_head
    calls = {"stem": 0}
    stem = model.stem()
    hook = stem.register_forward_hook(lambda *a: calls.__setitem__("stem", calls["stem"] + 1))
    x, _ = pool.batch(torch.arange(4), torch.Generator().manual_seed(0))
    model.eval()  # as in training: the frozen stem keeps the teacher's batch-norm statistics
    with torch.no_grad():
        shared = model.encode_after_stem(teacher.model.head(x))
        assert calls["stem"] == 0
        assert torch.allclose(shared, d._encode(x, None), atol=1e-4) and calls["stem"] == 1
    d.run()
    # both stages (stage 2 on mixed views) ran on the teacher's head alone
    assert calls["stem"] == 1
    hook.remove()
    # a stem with its own random weights
    other = SvbBottleneck(svb_config_for(teacher, 4, stem=True))
    assert not Distiller(
        other, teacher, pool, cfg, progress=False, log=lambda s: None
    )._stem_is_head
