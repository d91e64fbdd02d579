"""HECS-B training: rate falls with beta, ||W||_F <= k holds, resume is exact, both CLI data
paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hecsb_ros.core.learned import HecsbBottleneck, HecsbConfig, read_learned
from hecsb_ros.core.teachers import Classifier, build_model, fmnist_spec
from hecsb_ros.core.training.data import TensorSource
from hecsb_ros.core.training.distill import DistillConfig, Distiller, rounded_rate_and_logits

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)
CFG = HecsbConfig(
    1, (28, 28), 8, (14, 14), acq_channels=(8, 12), measurements=2, decoder_channels=16
)


@pytest.fixture(scope="module")
def teacher() -> Classifier:
    torch.manual_seed(0)
    spec = fmnist_spec()
    from pathlib import Path

    return Classifier(spec, build_model(spec, widths=(4, 8, 8)).eval(), "0" * 16, Path("none"))


@pytest.fixture(scope="module")
def data() -> TensorSource:
    g = torch.Generator().manual_seed(0)
    return TensorSource(
        torch.randn(128, 1, 28, 28, generator=g), torch.randint(0, 10, (128,), generator=g)
    )


def _train(teacher, data, beta, **kw):
    torch.manual_seed(0)
    cfg = DistillConfig(
        beta=beta, **{"stage1_epochs": 4, "stage2_epochs": 0, "batch_size": 32, "lr1": 3e-2, **kw}
    )
    return Distiller(
        HecsbBottleneck(CFG), teacher, data, cfg, progress=False, log=lambda s: None
    ).run()


def test_rate_decreases_with_beta(teacher, data):
    rates = []
    for beta in (0.0, 1e-5, 1e-2):
        model = _train(teacher, data, beta)
        bits, _ = rounded_rate_and_logits(model, teacher, data.x)
        rates.append(float(bits.mean()))
    assert rates[0] > rates[1] > rates[2], rates


def test_norm_constraint_holds_after_a_step(teacher, data):
    cfg = HecsbConfig(
        1,
        (28, 28),
        8,
        (14, 14),
        acq_channels=(8, 12),
        measurements=2,
        decoder_channels=16,
        max_norm=0.3,
    )
    torch.manual_seed(0)
    model = HecsbBottleneck(cfg)
    assert model.measure.frobenius_norm() <= 0.3 + 1e-6
    d = Distiller(
        model,
        teacher,
        data,
        DistillConfig(beta=0.0, stage1_epochs=1, stage2_epochs=1, batch_size=32, lr1=0.5, lr2=0.5),
        progress=False,
        log=lambda s: None,
    )
    with torch.no_grad():  # without projection this step size would leave the ball
        model.measure.weight.mul_(10)
    model.project_()
    d.run()
    assert model.measure.frobenius_norm() <= 0.3 + 1e-6
    assert model.measure.frobenius_norm() > 0.29  # the constraint is active, not trivially met


class _Interrupt(Exception):
    pass


class _FailingSource(TensorSource):
    calls = 0
    fail_at = -1

    def batch(self, idx, gen=None):
        type(self).calls += 1
        if type(self).calls == type(self).fail_at:
            raise _Interrupt()
        return super().batch(idx, gen)


@pytest.mark.parametrize("extra", [{}, {"ema": 0.9, "mixup": 0.5}], ids=["plain", "ema-mixup"])
def test_resume_continues_exactly(teacher, data, tmp_path, extra):
    kw = dict(beta=0.01, stage1_epochs=2, stage2_epochs=2, batch_size=32, **extra)
    torch.manual_seed(0)
    full = Distiller(
        HecsbBottleneck(CFG),
        teacher,
        data,
        DistillConfig(**kw),
        progress=False,
        log=lambda s: None,
    ).run()
    src = _FailingSource(data.x, data.y)
    _FailingSource.calls, _FailingSource.fail_at = 0, 4 * 2 + 4 * 1 + 2  # inside stage 2, epoch 4
    state = tmp_path / "state.pt"
    torch.manual_seed(0)
    with pytest.raises(_Interrupt):
        Distiller(
            HecsbBottleneck(CFG),
            teacher,
            src,
            DistillConfig(**kw),
            state,
            progress=False,
            log=lambda s: None,
        ).run()
    assert state.exists()
    _FailingSource.fail_at = -1
    torch.manual_seed(123)  # the saved random state must win over this
    resumed = Distiller(
        HecsbBottleneck(CFG),
        teacher,
        src,
        DistillConfig(**kw),
        state,
        progress=False,
        log=lambda s: None,
    ).run(resume=True)
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="other settings"):
        Distiller(
            HecsbBottleneck(CFG),
            teacher,
            src,
            DistillConfig(**{**kw, "beta": 0.5}),
            state,
            progress=False,
        ).run(resume=True)


def test_ema_and_mixup_change_stage_2_and_a_vanishing_decay_is_plain_training(teacher, data):
    kw = dict(stage1_epochs=1, stage2_epochs=2, lr2=1e-2)
    plain = _train(teacher, data, 1e-3, **kw).state_dict()
    # the average is the last weights
    last = _train(teacher, data, 1e-3, ema=1e-12, **kw).state_dict()
    averaged = _train(teacher, data, 1e-3, ema=0.9, **kw).state_dict()
    mixed = _train(teacher, data, 1e-3, mixup=1.0, **kw).state_dict()
    floats = [k for k, v in plain.items() if v.is_floating_point()]
    assert all(torch.allclose(plain[k], last[k], atol=1e-6) for k in floats)
    for other in (averaged, mixed):
        assert any(not torch.allclose(plain[k], other[k]) for k in floats)
        assert all(torch.isfinite(other[k]).all() for k in floats)
    with pytest.raises(ValueError, match="decay"):
        DistillConfig(beta=0.0, ema=1.0)
    with pytest.raises(ValueError, match="fraction"):
        DistillConfig(beta=0.0, mixup=1.5)


def test_mixed_kd_loss_reduces_to_the_plain_loss():
    from hecsb_ros.core.training.common import kd_loss
    from hecsb_ros.core.training.distill import mixed_kd_loss

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 10, generator=g), torch.randn(6, 10, generator=g)
    ya, yb = torch.randint(0, 10, (6,), generator=g), torch.randint(0, 10, (6,), generator=g)
    ones, zeros = torch.ones(6), torch.zeros(6)
    assert torch.allclose(mixed_kd_loss(s, t, ya, yb, ones, 0.5, 4.0), kd_loss(s, t, ya, 0.5, 4.0))
    assert torch.allclose(
        mixed_kd_loss(s, t, ya, yb, zeros, 0.5, 4.0), kd_loss(s, t, yb, 0.5, 4.0)
    )
    half = mixed_kd_loss(s, t, ya, yb, ones / 2, 0.0, 4.0)
    assert torch.allclose(half, (kd_loss(s, t, ya, 0.0, 4.0) + kd_loss(s, t, yb, 0.0, 4.0)) / 2)


def test_hold_out_splits_off_a_fixed_disjoint_subset(data):
    from hecsb_ros.core.training.sources import hold_out

    assert hold_out(data, 0) == (data, None)
    rest, val = hold_out(data, 28)
    again, val2 = hold_out(data, 28)
    assert (
        (len(rest), len(val)) == (100, 28)
        and torch.equal(val.x, val2.x)
        and torch.equal(rest.y, again.y)
    )
    rows = {tuple(r) for r in data.x.flatten(1)[:, :8].tolist()}
    got_rest = {tuple(r) for r in rest.x.flatten(1)[:, :8].tolist()}
    got_val = {tuple(r) for r in val.x.flatten(1)[:, :8].tolist()}
    assert not got_rest & got_val and got_rest | got_val == rows
    with pytest.raises(ValueError, match="no training images"):
        hold_out(data, 128)


def test_cli_fashion_mnist(tmp_path, random_classifier, missing_data):
    from hecsb_ros.cli.train_hecsb import main
    from hecsb_ros.core.datasets import DatasetNotFound, load_fashion_mnist

    try:
        load_fashion_mnist("test")
    except DatasetNotFound as exc:
        missing_data(exc)
    rc = main(
        [
            "--teacher",
            str(random_classifier),
            "--beta",
            "0.01",
            "0.1",
            "--stage1-epochs",
            "1",
            "--stage2-epochs",
            "1",
            "--limit-train",
            "64",
            "--limit-test",
            "32",
            "--batch-size",
            "32",
            "--acq-channels",
            "8",
            "12",
            "--decoder-channels",
            "16",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert rc == 0
    for level, beta in ((0, 0.1), (1, 0.01)):  # level 0 = the largest beta
        manifest = json.loads((tmp_path / f"hecsb_fmnist_r{level}.json").read_text())
        assert manifest["beta"] == beta and manifest["test_images"] == 32
        assert manifest["mean_payload_bytes"] > 0 and 0 <= manifest["test_accuracy"] <= 1
        options, data = manifest["training_options"], manifest["data_options"]
        assert (options["acq_channels"], options["batch_size"], data["limit_train"]) == (
            [8, 12],
            32,
            64,
        )
        # the prior was fitted after training, never worse
        before, after = manifest["prior_refit_bytes"]
        assert 0 < after <= before
        model, meta, _ = read_learned(tmp_path / manifest["file"])
        assert meta["beta"] == repr(beta) and len(manifest["model_id"]) == 16
    assert not list(tmp_path.glob("*.train_state.pt"))
    # continue stage 2 from a trained level (written in place); the manifest keeps the history
    first = json.loads((tmp_path / "hecsb_fmnist_r0.json").read_text())
    rc = main(
        [
            "--teacher",
            str(random_classifier),
            "--beta",
            "0.1",
            "--levels",
            "0",
            "--init",
            str(tmp_path / "hecsb_fmnist_r0.safetensors"),
            "--stage1-epochs",
            "0",
            "--stage2-epochs",
            "1",
            "--limit-train",
            "80",
            "--val-images",
            "16",
            "--ema",
            "0.9",
            "--mixup",
            "0.5",
            "--limit-test",
            "32",
            "--batch-size",
            "32",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert rc == 0
    again = json.loads((tmp_path / "hecsb_fmnist_r0.json").read_text())
    assert again["val_images"] == 16 and 0 <= again["val_accuracy"] <= 1
    assert (again["distill"]["ema"], again["distill"]["mixup"]) == (0.9, 0.5)
    assert again["model_id"] != first["model_id"] and again["config"] == first["config"]
    assert [e["model_id"] for e in again["earlier_training"]] == [first["model_id"]]
    # a new, deeper decoder behind the trained encoder and prior
    edge_before, _, _ = read_learned(tmp_path / "hecsb_fmnist_r0.safetensors")
    rc = main(
        [
            "--teacher",
            str(random_classifier),
            "--beta",
            "0.1",
            "--levels",
            "0",
            "--init",
            str(tmp_path / "hecsb_fmnist_r0.safetensors"),
            "--decoder-blocks",
            "2",
            "--stage1-epochs",
            "0",
            "--stage2-epochs",
            "1",
            "--freeze-encoder",
            "--limit-train",
            "64",
            "--limit-test",
            "32",
            "--batch-size",
            "32",
            "--out",
            str(tmp_path / "deeper"),
            "--no-progress",
        ]
    )
    assert rc == 0
    deeper = json.loads((tmp_path / "deeper" / "hecsb_fmnist_r0.json").read_text())
    assert deeper["config"] == {**again["config"], "decoder_blocks": 2}
    model, _, _ = read_learned(tmp_path / "deeper" / "hecsb_fmnist_r0.safetensors")
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():  # encoder and prior frozen: the same latent and the same bytes
        assert torch.equal(model.encode(x), edge_before.encode(x))
    assert torch.equal(
        model.entropy_bottleneck._quantized_cdf, edge_before.entropy_bottleneck._quantized_cdf
    )
    # one more measurement per position, grown from the trained model
    rc = main(
        [
            "--teacher",
            str(random_classifier),
            "--beta",
            "0.1",
            "--levels",
            "0",
            "--init",
            str(tmp_path / "hecsb_fmnist_r0.safetensors"),
            "--measurements",
            "3",
            "--stage1-epochs",
            "0",
            "--stage2-epochs",
            "1",
            "--limit-train",
            "64",
            "--limit-test",
            "32",
            "--batch-size",
            "32",
            "--out",
            str(tmp_path / "grown"),
            "--no-progress",
        ]
    )
    assert rc == 0
    grown = json.loads((tmp_path / "grown" / "hecsb_fmnist_r0.json").read_text())
    assert grown["config"] == {**again["config"], "measurements": 3}
    assert [e["model_id"] for e in grown["earlier_training"]][-1] == again["model_id"]


def test_cli_imagenet_folder(tmp_path):
    from PIL import Image
    from torchvision.models import resnet50

    from hecsb_ros.cli.train_hecsb import main

    rng = np.random.default_rng(0)
    for cls in ("n01440764", "n01443537"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(
                tmp_path / "train" / cls / f"{i}.JPEG"
            )
    torch.manual_seed(0)
    weights = tmp_path / "resnet50.pth"
    torch.save(resnet50(weights=None).state_dict(), weights)
    rc = main(
        [
            "--data",
            "imagenet-folder",
            str(tmp_path / "train"),
            "--resnet50-weights",
            str(weights),
            "--beta",
            "0.001",
            "--stage1-epochs",
            "1",
            "--stage2-epochs",
            "1",
            "--batch-size",
            "2",
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
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert rc == 0
    manifest = json.loads((tmp_path / "out" / "hecsb_resnet50_r0.json").read_text())
    assert manifest["test_images"] == 4 and manifest["config"]["feature_channels"] == 512
    assert manifest["config"]["feature_size"] == [28, 28]


def test_time_budget_scales_epochs_and_leaves_the_training_state_alone(teacher, data):
    from hecsb_ros.core.training import epochs_for_budget, resolve_device

    assert epochs_for_budget(100.0, [2.0, 3.0], [1, 3]) == [9, 27]  # 9*2 + 27*3 = 99 <= 100
    assert epochs_for_budget(1.0, [2.0, 3.0], [1, 3]) == [1, 1]  # never below one epoch per stage
    assert epochs_for_budget(60.0, [2.0, 3.0], [0, 4]) == [0, 20]
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="--device cpu"):
            resolve_device("cuda")

    torch.manual_seed(0)
    cfg = DistillConfig(beta=1e-3, stage1_epochs=1, stage2_epochs=3, batch_size=32)
    d = Distiller(HecsbBottleneck(CFG), teacher, data, cfg, progress=False, log=lambda s: None)
    before = {k: v.clone() for k, v in d.model.state_dict().items()}
    gen_before, rng_before = d.gen.get_state(), torch.get_rng_state()
    small = d.fit_budget(0.001, steps=2)
    # shorter than the configured 1 + 3 epochs: those epochs, each on part of the images (the ratio
    # kept)
    assert (small.stage1_epochs, small.stage2_epochs) == (1, 3) and small.epoch_fraction < 1
    assert d.steps_per_epoch == max(1, int(len(data) // 32 * small.epoch_fraction))
    large = d.fit_budget(5.0, steps=2)
    assert large.stage2_epochs >= 3 * large.stage1_epochs - 1 and large.stage1_epochs > 1
    assert large.epoch_fraction == 1.0 and d.steps_per_epoch == len(data) // 32
    assert d.cfg == large and large.beta == cfg.beta and large.batch_size == cfg.batch_size
    after = d.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(d.gen.get_state(), gen_before) and torch.equal(
        torch.get_rng_state(), rng_before
    )


def test_fit_prior_lowers_the_rate_and_can_keep_the_rounding_grid():
    from compressai.entropy_models import EntropyBottleneck

    from hecsb_ros.core.training.prior import fit_prior_, prior_bits

    gen = torch.Generator().manual_seed(0)
    latents = torch.distributions.Laplace(
        torch.tensor([0.0, 3.0, -2.0, 0.5]).view(1, 4, 1, 1),
        torch.tensor([0.3, 1.0, 2.0, 4.0]).view(1, 4, 1, 1),
    ).sample((64,))
    latents = latents.reshape(64, 4, 1, 1).expand(64, 4, 6, 6) + 0.1 * torch.randn(
        64, 4, 6, 6, generator=gen
    )
    eb = EntropyBottleneck(4)
    medians = eb.quantiles[..., 1].detach().clone()
    fresh_bits = prior_bits(eb, latents)
    before, after = fit_prior_(eb, latents, steps=150, samples=2048, keep_medians=True)
    assert before == pytest.approx(fresh_bits, rel=1e-5)
    assert after < 0.7 * before
    assert after == pytest.approx(prior_bits(eb, latents), rel=1e-5)
    assert torch.equal(eb.quantiles[..., 1], medians)
    free = EntropyBottleneck(4)
    fit_prior_(free, latents, steps=150, samples=2048)
    # without keep_medians the medians follow the data
    assert not torch.equal(free.quantiles[..., 1], medians)
    untouched = EntropyBottleneck(4)
    state = {k: v.clone() for k, v in untouched.state_dict().items()}
    b0, b1 = fit_prior_(untouched, latents, steps=0)
    assert b0 == b1 and all(torch.equal(v, untouched.state_dict()[k]) for k, v in state.items())
