"""The typed training configuration: frozen options per recipe that refuse unknown and wrong
settings with the reason, built by the commands from their arguments, and the budget schedule."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from hecsb_ros.cli import train_baselines, train_hecsb
from hecsb_ros.cli.options import recipe_options
from hecsb_ros.core.training.common import budget_schedule
from hecsb_ros.core.training.config import (
    DISTILL_FIELDS,
    CrbqOptions,
    DataOptions,
    DistillConfig,
    DistilledOptions,
    HecsbOptions,
    RdOptions,
    SvbOptions,
    TrainingRun,
)
from hecsb_ros.core.training.recipes import RECIPES, TrainJob

pytestmark = [pytest.mark.unit]


def test_options_are_frozen_and_a_misspelt_setting_is_an_error():
    options = HecsbOptions(stage1_epochs=1, acq_channels=[8, 12])
    assert options.acq_channels == (8, 12)  # lists become tuples: hashable, frozen
    with pytest.raises(TypeError):
        HecsbOptions(stage1_epoch=1)
    with pytest.raises(AttributeError):
        options.stage1_epoch  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.stage1_epochs = 2


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: DistilledOptions(mixup=2.0), "mixup"),
        (lambda: DistilledOptions(train_tail=True, freeze_encoder=True), "train_tail"),
        (lambda: HecsbOptions(batch_size=0), "batch_size"),
        (lambda: HecsbOptions(acq_channels=()), "acq_channels"),
        (lambda: SvbOptions(budget_min=0), "budget_min"),
        (lambda: CrbqOptions(freeze_stem=True), "needs stem"),
        (lambda: RdOptions(patch=100), "multiple of 64"),
        (lambda: DataOptions(("photos",)), "photos PATH"),
        (lambda: DataOptions(("imagenet-folder", "x"), val_images=5), "val_folder"),
        (lambda: TrainingRun("hecsb", (1e-3, 1e-4), HecsbOptions(), levels=(0, 0)), "distinct"),
        (
            lambda: TrainingRun("svb", (1e-3,), SvbOptions(), init=(Path("a"), Path("b"))),
            "one checkpoint",
        ),
    ],
)
def test_wrong_settings_raise_value_error_with_the_reason(make, reason):
    with pytest.raises(ValueError, match=reason):
        make()


def test_the_two_stage_options_carry_every_distill_setting():
    assert set(DISTILL_FIELDS) <= {f.name for f in dataclasses.fields(DistilledOptions)}
    assert DistilledOptions().distill_config(1e-3) == DistillConfig(beta=1e-3)  # the same defaults
    cfg = HecsbOptions(stage1_epochs=0, mixup=0.5, batch_size=32, seed=3).distill_config(3e-4)
    assert (cfg.beta, cfg.stage1_epochs, cfg.mixup, cfg.batch_size, cfg.seed) == (
        3e-4,
        0,
        0.5,
        32,
        3,
    )


def test_a_job_carries_the_options_its_recipe_takes():
    assert {RECIPES[k].options for k in ("hecsb", "hecsb_light")} == {HecsbOptions}
    assert (RECIPES["svb"].options, RECIPES["crbq"].options, RECIPES["factorized"].options) == (
        SvbOptions,
        CrbqOptions,
        RdOptions,
    )
    with pytest.raises(ValueError, match="takes HecsbOptions, not SvbOptions"):
        TrainJob("hecsb", 1e-3, 0, None, None, SvbOptions())


def test_manifests_record_the_options_as_json():
    m = HecsbOptions(acq_channels=(8, 12)).manifest()
    assert m["acq_channels"] == [8, 12] and m["refit_prior"] is True
    d = DataOptions(("pool", "a", "b"), cache=Path("runs/cache"), test_list=Path("t.csv"))
    d = d.manifest()
    assert d["data"] == ["pool", "a", "b"] and d["cache"] == "runs/cache"
    json.dumps([m, d, RdOptions().manifest()])


def test_every_setting_of_a_recipe_is_an_argument_of_its_command():
    args = train_hecsb.parse_args(["--beta", "1e-3", "--acq-channels", "8", "12", "--refit-prior"])
    options = recipe_options(HecsbOptions, args, absent=train_hecsb.NOT_OFFERED)
    assert options.acq_channels == (8, 12) and options.stage1_epochs == 1 and options.refit_prior
    bare = train_hecsb.parse_args(["--beta", "1"])
    # an argument left at None: the field's default
    assert recipe_options(HecsbOptions, bare, absent=train_hecsb.NOT_OFFERED).refit_prior
    for kind, (cls, absent) in train_baselines.OPTIONS.items():
        flag = "--" + train_baselines.SETTING_OPTION[kind]
        recipe_options(cls, train_baselines.parse_args([kind, flag, "1"]), absent=absent)
    with pytest.raises(TypeError, match="aux_lr"):  # neither offered nor declared not offered
        recipe_options(HecsbOptions, args)


def test_commands_turn_wrong_settings_into_a_usage_error(capsys, tmp_path):
    out = ["--out", str(tmp_path), "--no-progress"]
    assert train_hecsb.main(["--beta", "1e-3", "--mixup", "2"] + out) == 2
    assert capsys.readouterr().err.startswith("hecsb train hecsb: error: mixup")
    assert train_hecsb.main(["--beta", "1e-3", "1e-4", "--levels", "0"] + out) == 2
    assert "one distinct level per value" in capsys.readouterr().err
    assert train_baselines.main(["crbq", "--channels", "2", "--data", "photos"] + out) == 2
    assert "error: data must be" in capsys.readouterr().err
    assert train_baselines.main(["svb"] + out) == 2
    assert "svb needs --beta" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_budget_schedule_keeps_the_ratio_and_splits_long_epochs():
    # 100 s per epoch of each stage, 1 : 3 configured
    assert budget_schedule(800, [100, 100], (1, 3), 50) == ([2, 6], 1.0)
    epochs, fraction = budget_schedule(100, [100, 100], (1, 3), 50)  # shorter than the four epochs
    assert epochs == [1, 3] and fraction == pytest.approx(0.25)
    epochs, fraction = budget_schedule(800, [100, 100], (1, 3), 50, max_epoch_s=30)
    assert epochs == [8, 24] and fraction == pytest.approx(0.25)  # the same steps, shorter epochs
    epochs, _ = budget_schedule(800, [100, 100], (1, 3), 2, max_epoch_s=1)
    assert epochs == [4, 12]  # at least one step an epoch


def test_device_is_kept_as_given():
    run = TrainingRun("crbq", [2.0], CrbqOptions(), device=torch.device("cpu"))
    assert run.values == (2.0,) and run.device.type == "cpu" and run.data == DataOptions()
