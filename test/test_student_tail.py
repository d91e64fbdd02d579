"""Stage 2 fine-tuning of the teacher's tail: trained, saved with the bottleneck, run by the
server."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hecsb_ros.core.learned import HecsbBottleneck, HecsbConfig, Split, read_learned, save_learned
from hecsb_ros.core.store import read_tensors
from hecsb_ros.core.teachers import Classifier, build_model, fmnist_spec, save_checkpoint
from hecsb_ros.core.teachers.tail import TAIL_PREFIX, build_tail, split_tail_state, tail_state
from hecsb_ros.core.training.data import TensorSource
from hecsb_ros.core.training.distill import DistillConfig, Distiller, rounded_rate_and_logits

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)
CFG = HecsbConfig(
    1, (28, 28), 8, (14, 14), acq_channels=(8, 12), measurements=2, decoder_channels=16
)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    spec = fmnist_spec()
    model = build_model(spec, widths=(4, 8, 8)).eval()
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_checkpoint(path, model.state_dict(), spec, arch={"widths": [4, 8, 8]})
    return path


@pytest.fixture()
def teacher(teacher_file) -> Classifier:
    from hecsb_ros.core.teachers import load_teacher

    return load_teacher(teacher_file)


@pytest.fixture(scope="module")
def data() -> TensorSource:
    g = torch.Generator().manual_seed(0)
    return TensorSource(
        torch.randn(96, 1, 28, 28, generator=g), torch.randint(0, 10, (96,), generator=g)
    )


def _distill(teacher, data, **kw) -> Distiller:
    torch.manual_seed(0)
    cfg = DistillConfig(beta=1e-3, stage1_epochs=1, stage2_epochs=2, batch_size=32, lr2=1e-2, **kw)
    d = Distiller(HecsbBottleneck(CFG), teacher, data, cfg, progress=False, log=lambda s: None)
    d.run()
    return d


def test_train_tail_fine_tunes_a_copy_and_leaves_the_teacher_alone(teacher, data):
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    frozen = _distill(teacher, data)
    assert frozen.tail is teacher.model.tail  # default: the teacher's own tail, untouched
    tuned = _distill(teacher, data, train_tail=True)
    assert tuned.tail is not teacher.model.tail
    after = teacher.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    mine, theirs = tuned.tail.state_dict(), teacher.model.tail.state_dict()
    assert any(not torch.equal(mine[k], theirs[k]) for k in mine if mine[k].is_floating_point())
    assert not tuned.tail.training and all(not p.requires_grad for p in teacher.model.parameters())


def test_tail_travels_in_the_checkpoint_and_the_server_runs_it(teacher, data, tmp_path):
    d = _distill(teacher, data, train_tail=True, ema=0.5)
    path = save_learned(tmp_path / "b.safetensors", d.model, teacher.model_id, tail=d.tail)
    state, meta = read_tensors(path)
    assert meta["tail"] == "fine-tuned" and any(k.startswith(TAIL_PREFIX) for k in state)
    model, _, _ = read_learned(path)  # the bottleneck alone loads strictly, without the tail keys
    assert set(model.state_dict()) == set(split_tail_state(state)[0])
    split = Split.load(path, teacher)
    assert split.tail is not teacher.model.tail
    x = data.x[:4]
    payloads = split.encode(x)
    with torch.inference_mode():
        got = torch.stack([split.decode(p) for p in payloads])
        expected = rounded_rate_and_logits(d.model, teacher, x, tail=d.tail)[1]
        teachers = rounded_rate_and_logits(d.model, teacher, x)[1]
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, teachers, atol=1e-3)  # the fine-tuned tail, not the teacher's
    plain = save_learned(tmp_path / "plain.safetensors", d.model, teacher.model_id)
    assert Split.load(plain, teacher).tail is teacher.model.tail


def test_resume_restores_the_tail(teacher, data, tmp_path):
    kw = dict(
        beta=1e-3, stage1_epochs=0, stage2_epochs=2, batch_size=32, lr2=1e-2, train_tail=True
    )
    torch.manual_seed(0)
    state = tmp_path / "state.pt"
    first = Distiller(
        HecsbBottleneck(CFG),
        teacher,
        data,
        DistillConfig(**kw),
        state,
        progress=False,
        log=lambda s: None,
    )
    first.run()
    torch.manual_seed(0)
    again = Distiller(
        HecsbBottleneck(CFG),
        teacher,
        data,
        DistillConfig(**kw),
        state,
        progress=False,
        log=lambda s: None,
    )
    again.run(resume=True)  # all epochs done: the saved tail comes back as it was
    a, b = first.tail.state_dict(), again.tail.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_tails_and_settings_are_refused(teacher):
    with pytest.raises(ValueError, match="freeze_encoder"):
        DistillConfig(beta=0.0, train_tail=True, freeze_encoder=True)
    with pytest.raises(ValueError, match="tail_lr_scale"):
        DistillConfig(beta=0.0, tail_lr_scale=0.0)
    other = build_model(fmnist_spec(), widths=(4, 8, 16)).tail
    with pytest.raises(ValueError, match="does not fit"):
        build_tail(teacher.model.tail, split_tail_state(tail_state(other))[1])
    assert build_tail(teacher.model.tail, {}) is teacher.model.tail


def test_svb_checkpoint_carries_its_tail(teacher, tmp_path):
    from hecsb_ros.core.learned import SvbBottleneck, svb_config_for

    torch.manual_seed(0)
    model = SvbBottleneck(svb_config_for(teacher, 4))
    model.update()
    tail = build_tail(teacher.model.tail, split_tail_state(tail_state(teacher.model.tail))[1])
    with torch.no_grad():
        for p in tail.parameters():
            p.add_(0.5)
    path = save_learned(
        tmp_path / "svb.safetensors", model, teacher.model_id, {"beta": 0.1}, tail=tail
    )
    split = Split.load(path, teacher)
    h = torch.randn(1, 8, 14, 14)
    with torch.inference_mode():
        assert torch.allclose(split.classify(h), tail(h))
        assert not torch.allclose(split.classify(h), teacher.model.tail(h))
        data = split.payload(split.latent(torch.randn(1, 1, 28, 28))[0])
        assert split.decode(data).shape == (10,)
