"""Teachers: the registry, shapes, head/tail split, checkpoints without pickle, model ids, the
shipped teacher."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from hecsb_ros.core.store import model_id_of
from hecsb_ros.core.teachers import (
    Classifier,
    ClassifierSpec,
    Teacher,
    build_model,
    default_teacher_path,
    fmnist_spec,
    get_teacher,
    images_to_tensor,
    list_teachers,
    load_teacher,
    read_checkpoint,
    register_teacher,
    resnet50_spec,
    resolve_teacher,
    save_checkpoint,
    teacher_tag,
)
from hecsb_ros.core.teachers.resnet50 import torchvision_to_split_keys

torch.set_num_threads(1)


def test_fmnist_resnet_shapes_and_split():
    torch.manual_seed(0)
    model = build_model(fmnist_spec(), widths=(8, 16, 32)).eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        h = model.head(x)
        assert h.shape == (3, 16, 14, 14)
        logits = model(x)
        assert logits.shape == (3, 10)
        assert torch.equal(model.tail(h), logits)


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    return build_model(resnet50_spec()).eval()


def test_resnet50_shapes_and_split(resnet50):
    spec = resnet50_spec()
    assert len(spec.classes) == 1000 and spec.classes[0] == "tench"
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        h = resnet50.head(x)
        assert h.shape == (1, 512, 28, 28)
        logits = resnet50(x)
        assert logits.shape == (1, 1000)
        assert torch.allclose(resnet50.tail(h), logits)


def test_resnet50_loads_local_torchvision_weights(resnet50, tmp_path):
    from torchvision.models import resnet50 as tv_resnet50

    torch.manual_seed(1)
    tv = tv_resnet50(weights=None).eval()
    path = tmp_path / "resnet50.pth"
    torch.save(tv.state_dict(), path)
    clf = load_teacher(path)  # recognised by its tensor names
    assert (
        clf.spec.backbone == "resnet50"
        and clf.model_id == model_id_of(path)
        and clf.tag == "resnet50"
    )
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(clf.model(x), tv(x), atol=1e-5)
    named = load_teacher(f"resnet50:{path}")  # or named with its family
    assert named.model_id == clf.model_id and teacher_tag(f"resnet50:{path}") == "resnet50"
    with pytest.raises(ValueError, match="no default weights"):
        resolve_teacher("resnet50")
    weird = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, weird)
    with pytest.raises(ValueError, match="no registered teacher"):
        load_teacher(weird)
    with pytest.raises(KeyError):
        torchvision_to_split_keys({"unknown.weight": torch.zeros(1)})


def test_checkpoint_round_trip_without_pickle(tmp_path, monkeypatch):
    torch.manual_seed(0)
    spec = fmnist_spec()
    model = build_model(spec, widths=(8, 16, 32)).eval()
    path = tmp_path / "clf.safetensors"
    save_checkpoint(
        path, model.state_dict(), spec, {"test_accuracy": "0.5"}, arch={"widths": [8, 16, 32]}
    )

    def no_unpickling(*args, **kwargs):
        raise AssertionError("loading a checkpoint must not unpickle")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(torch, "load", no_unpickling)
    ckpt = read_checkpoint(path)
    assert ckpt.spec == spec and ckpt.metadata["test_accuracy"] == "0.5"
    clf = load_teacher(path)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(clf.model(x), model(x))
    assert not clf.model.training
    # the model id is a content hash: stable across reads, different for different bytes
    assert clf.model_id == model_id_of(path) == load_teacher(path).model_id
    assert len(clf.model_id) == 16 and int(clf.model_id, 16) >= 0
    other = tmp_path / "other.safetensors"
    save_checkpoint(
        other, model.state_dict(), spec, {"test_accuracy": "0.6"}, arch={"widths": [8, 16, 32]}
    )
    assert model_id_of(other) != clf.model_id


def test_reserved_metadata_rejected(tmp_path):
    spec = fmnist_spec()
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "x.safetensors", {"w": torch.zeros(1)}, spec, {"spec": "x"})


def test_missing_checkpoint_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="hecsb_ros.cli.train_teacher"):
        load_teacher(tmp_path / "nothing.safetensors")


def test_images_to_tensor():
    spec = ClassifierSpec("fmnist_resnet", ("a", "b"), (2, 3), 1, (0.5,), (0.25,))
    img = np.array([[0, 255, 0], [255, 0, 255]], dtype=np.uint8)[..., None]
    x = images_to_tensor(img, spec)
    assert x.shape == (1, 1, 2, 3) and x.dtype == torch.float32
    assert torch.allclose(x[0, 0, 0], torch.tensor([-2.0, 2.0, -2.0]))
    assert images_to_tensor(np.stack([img, img]), spec).shape == (2, 1, 2, 3)
    with pytest.raises(ValueError):
        images_to_tensor(img.astype(np.float32), spec)
    with pytest.raises(ValueError):
        images_to_tensor(np.zeros((3, 3, 1), np.uint8), spec)
    rgb = images_to_tensor(np.full((224, 224, 3), 128, np.uint8), resnet50_spec())
    assert rgb.shape == (1, 3, 224, 224)


def test_shipped_teacher_accuracy(missing_data):
    from hecsb_ros.core.datasets import DatasetNotFound, load_fashion_mnist
    from hecsb_ros.core.training import evaluate

    clf = load_teacher()
    assert isinstance(clf, Classifier) and clf.path == default_teacher_path()
    manifest = json.loads(default_teacher_path().with_suffix(".json").read_text())
    assert manifest["model_id"] == clf.model_id
    try:
        test = load_fashion_mnist("test").subset(1000)
    except DatasetNotFound as exc:
        missing_data(exc)
    x = images_to_tensor(test.images[..., None], clf.spec)
    acc = evaluate(clf.model, x, torch.from_numpy(test.labels))
    assert acc >= 0.90


def test_registry_names_and_errors():
    assert {"fmnist_resnet", "resnet50"} <= set(list_teachers())
    # dashes and underscores alike
    assert get_teacher("fmnist-resnet") is get_teacher("fmnist_resnet")
    assert teacher_tag("") == teacher_tag("fmnist_resnet") == "fmnist"
    assert resolve_teacher(None).path == default_teacher_path()
    with pytest.raises(ValueError, match="known teachers: .*fmnist_resnet"):
        get_teacher("alexnet")


def test_a_new_teacher_is_one_registration(tmp_path):
    """A family of one's own: a Teacher with a builder; its checkpoints then load by their spec."""
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self, spec):
            super().__init__()
            self.head = nn.Conv2d(spec.in_channels, 4, 3, 2, 1)
            self.tail = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(4, spec.num_classes)
            )

        def forward(self, x):
            return self.tail(self.head(x))

    register_teacher(Teacher(name="tiny_test", tag="tiny", build=lambda spec, **arch: Tiny(spec)))
    spec = ClassifierSpec("tiny_test", ("a", "b"), (8, 8), 1, (0.5,), (0.5,))
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, Tiny(spec).state_dict(), spec)
    clf = load_teacher(path)
    assert clf.tag == "tiny" and clf.split_features() == (4, (4, 4))
    assert clf.model(torch.zeros(1, 1, 8, 8)).shape == (1, 2)
