"""ONNX export of the learned codecs' networks and the ONNX Runtime backend (Fashion-MNIST levels):
checked files and manifests, ONNX Runtime against PyTorch (latents, logits, payload bytes, top-1),
either backend's edge with the other's server, the export cache, and clear errors."""

from __future__ import annotations

import json
import struct
import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hecsb_ros.core.codecs import CodecSettings, create_codec  # noqa: E402
from hecsb_ros.core.onnx_export import OPSET, check_folder, export_split  # noqa: E402
from hecsb_ros.core.onnx_runtime import BACKENDS, OrtSplit, cache_dir  # noqa: E402
from hecsb_ros.core.teachers.spec import images_to_tensor  # noqa: E402

KINDS = ("hecsb", "svb", "crbq", "factorized", "hyperprior")


@pytest.fixture(scope="module")
def _test_images():
    from hecsb_ros.core.datasets import DatasetNotFound, load_fashion_mnist

    try:
        return load_fashion_mnist("test").images[:40]
    except DatasetNotFound as exc:
        return exc


@pytest.fixture()
def images(_test_images, missing_data) -> np.ndarray:
    """The first 40 Fashion-MNIST test images ``(40, 28, 28)`` uint8."""
    if isinstance(_test_images, Exception):
        missing_data(_test_images)
    return _test_images


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("onnx_cache"))


def _pair(kind: str, cache: str):
    torch_codec = create_codec(kind, CodecSettings(threads=1))
    ort_codec = create_codec(
        kind, CodecSettings(threads=1, backend="onnxruntime", onnx_cache=cache)
    )
    return torch_codec, ort_codec


@pytest.mark.parametrize("kind", KINDS)
def test_exported_files_pass_the_checker_and_the_manifest_describes_them(kind, tmp_path):
    split = create_codec(kind, CodecSettings(threads=1)).split
    manifest = export_split(split, tmp_path)
    assert check_folder(tmp_path) == manifest
    assert manifest["opset"] == OPSET == 17 and manifest["model_id"] == split.model_id
    assert manifest["teacher_model_id"] == split.teacher.model_id and manifest["normalisation"][
        "mean"
    ] == [pytest.approx(v) for v in split.teacher.spec.mean]
    assert manifest["versions"]["onnxruntime"] != "not installed"
    assert set(manifest["kept_in_torch"]) == ({"h_a", "h_s"} if kind == "hyperprior" else set())
    nets = manifest["networks"]
    assert set(nets) == {"edge", "server"}
    for part, (inp, out) in {"edge": ("image", "latent"), "server": ("latent", "logits")}.items():
        model = onnx.load(str(tmp_path / nets[part]["file"]))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == 17
        assert [i.name for i in model.graph.input] == [inp] and [
            o.name for o in model.graph.output
        ] == [out]
        dims = [
            d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim
        ]
        assert dims == nets[part]["input"]["shape"] and dims[0] == "N"
        assert nets[part]["max_abs_diff_vs_torch"] < 1e-4
    c, h, w = split.teacher.spec.in_channels, *split.teacher.spec.input_size
    assert nets["edge"]["input"]["shape"] == ["N", c, h, w] and nets["server"]["output"][
        "shape"
    ] == ["N", 10]
    assert nets["edge"]["output"]["shape"] == nets["server"]["input"]["shape"]


def test_a_fixed_batch_export_has_static_shapes(tmp_path):
    split = create_codec("hecsb", CodecSettings(threads=1)).split
    manifest = export_split(split, tmp_path, batch=4)
    model = onnx.load(str(tmp_path / "server.onnx"))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][0] == 4
    assert manifest["networks"]["server"]["output"]["shape"] == [4, 10]


def _crbq_payloads_agree(a: bytes, b: bytes) -> bool:
    """CR+BQ's payload starts with the latent's float32 minimum and maximum: they agree to float
    precision, and the 8-bit codes to one step."""
    (lo_a, hi_a), (lo_b, hi_b) = struct.unpack_from("<ff", a), struct.unpack_from("<ff", b)
    qa, qb = (np.frombuffer(x[8:], np.uint8).astype(int) for x in (a, b))
    return (
        len(a) == len(b)
        and abs(lo_a - lo_b) < 1e-4
        and abs(hi_a - hi_b) < 1e-4
        and int(np.abs(qa - qb).max()) <= 1
    )


@pytest.mark.parametrize("kind", KINDS)
def test_onnxruntime_gives_the_torch_latents_payloads_and_classes(kind, images, cache):
    torch_codec, ort_codec = _pair(kind, cache)
    assert (
        ort_codec.model_id == torch_codec.model_id
        and ort_codec.ort is not None
        and torch_codec.ort is None
    )
    x = images_to_tensor(images[..., None], ort_codec.spec)
    with torch.inference_mode():
        y_torch = torch_codec.split.latent(x)
    y_ort = ort_codec.ort.latent(x)
    assert y_ort.shape == y_torch.shape and float((y_ort - y_torch).abs().max()) < 1e-4
    same_bytes = 0
    for im in images:
        a, b = torch_codec.encode(im, "mono8"), ort_codec.encode(im, "mono8")
        if kind == "crbq":
            assert _crbq_payloads_agree(a.data, b.data)
        same_bytes += a.data == b.data
        # each server decodes the other edge's payload: an edge on one backend talks to a server on
        # the other
        for data in (a.data, b.data):
            lt, lo = torch_codec.decode(data, ()).logits, ort_codec.decode(data, ()).logits
            assert float((lt - lo).abs().max()) < 1e-3
            assert int(lt.argmax()) == int(lo.argmax())
        assert int(torch_codec.decode(a.data, ()).logits.argmax()) == int(
            ort_codec.decode(b.data, ()).logits.argmax()
        )
    if kind != "crbq":  # the entropy coder rounds the same latents: the same bytes
        assert same_bytes == len(images)


def test_a_micro_batch_in_onnxruntime_classifies_as_frames_one_by_one(images, cache):
    _, codec = _pair("hecsb", cache)
    items = [(codec.encode(im, "mono8").data, ()) for im in images[:8]]
    items[3] = (b"\xff" * 5, ())  # a bad payload stays its own error
    batch = codec.decode_batch(items)
    for i, ((data, shape), got) in enumerate(zip(items, batch)):
        if i == 3:
            assert not hasattr(got, "logits")
            continue
        assert got.batch == 7
        assert torch.allclose(got.logits, codec.decode(data, shape).logits, atol=1e-4)


def test_an_image_codec_runs_its_teacher_in_onnxruntime(images, cache):
    torch_codec = create_codec("png", CodecSettings(threads=1))
    ort_codec = create_codec(
        "png", CodecSettings(threads=1, backend="onnxruntime", onnx_cache=cache)
    )
    for im in images[:10]:
        frame = torch_codec.encode(im, "mono8")
        lt, lo = (
            torch_codec.decode(frame.data, frame.shape).logits,
            ort_codec.decode(frame.data, frame.shape).logits,
        )
        assert float((lt - lo).abs().max()) < 1e-3 and int(lt.argmax()) == int(lo.argmax())
    assert json.loads((ort_codec.ort.folder / "manifest.json").read_text())["kind"] == "teacher"


def test_the_cache_is_reused_and_a_damaged_export_is_made_again(tmp_path, monkeypatch):
    split = create_codec("hecsb", CodecSettings(threads=1)).split
    first = OrtSplit(split, threads=1, cache=str(tmp_path))
    assert first.folder.parent == tmp_path and split.model_id in first.folder.name
    import hecsb_ros.core.onnx_runtime as rt

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds the files")

    monkeypatch.setattr(rt, "export_split", no_export)
    again = OrtSplit(split, threads=1, cache=str(tmp_path))
    assert again.manifest == first.manifest
    monkeypatch.undo()
    # a damaged file: its hash differs
    (first.folder / "edge.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match="differs from its manifest"):
        check_folder(first.folder)
    repaired = OrtSplit(split, threads=1, cache=str(tmp_path))
    assert check_folder(repaired.folder)["model_id"] == split.model_id
    x = torch.zeros(1, 1, 28, 28)
    assert torch.allclose(repaired.latent(x), first.latent(x))
    assert [p.name for p in tmp_path.iterdir()] == [first.folder.name]  # no temporary folders left


def test_cache_folder_setting_and_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HECSB_ONNX_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env" and cache_dir(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.delenv("HECSB_ONNX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hecsb_ros" / "onnx"


def test_an_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(
        ValueError, match="backend must be one of torch, onnxruntime, not 'tensorrt'"
    ):
        create_codec("hecsb", CodecSettings(backend="tensorrt"))


def test_without_onnxruntime_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    with pytest.raises(
        ImportError,
        match=r"pip install onnx==1\.17\.0 "
        r"onnxruntime==1\.20\.1.*backend 'torch'",
    ):
        create_codec("hecsb", CodecSettings(backend="onnxruntime", onnx_cache=str(tmp_path)))
    assert create_codec("hecsb", CodecSettings()).ort is None  # torch needs neither


def test_the_nodes_backend_parameter_matches_the_core():
    from hecsb_ros.params import BACKENDS as PARAM_BACKENDS, EDGE, SERVER

    assert PARAM_BACKENDS == BACKENDS
    for params in (EDGE, SERVER):
        backend = next(p for p in params if p.name == "backend")
        assert backend.choices == BACKENDS and backend.read_only and backend.default in BACKENDS
        assert next(p for p in params if p.name == "onnx_cache").read_only


def test_export_command_writes_files_manifest_and_index(tmp_path, capsys):
    from hecsb_ros.cli.export_onnx import main

    assert main(["--codec", "hecsb", "--quality", "3", "--out", str(tmp_path)]) == 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["hecsb_fmnist_r3"]["files"] == {
        "edge": "hecsb_fmnist_r3/edge.onnx",
        "server": "hecsb_fmnist_r3/server.onnx",
    }
    assert check_folder(tmp_path / "hecsb_fmnist_r3")["rate_level"] == "3"
    assert main(["--teacher-only", "--out", str(tmp_path)]) == 0
    assert "teacher_fmnist" in json.loads((tmp_path / "index.json").read_text())
    onnx.checker.check_model(str(tmp_path / "teacher_fmnist" / "teacher.onnx"))
    assert main(["--codec", "png", "--out", str(tmp_path)]) == 2
    assert "--teacher-only" in capsys.readouterr().err
    assert main(["--codec", "hecsb", "--quality", "99", "--out", str(tmp_path)]) == 2


def test_onnxruntime_on_a_gpu_device_is_refused_with_what_to_do(tmp_path):
    from hecsb_ros.core.onnx_runtime import check_device

    with pytest.raises(ValueError, match="set backend 'torch'"):
        check_device("cuda")
    split = create_codec("hecsb", CodecSettings(threads=1)).split
    with pytest.raises(ValueError, match="runs on the CPU, not on device 'cuda:0'"):
        OrtSplit(split, threads=1, cache=str(tmp_path), device="cuda:0")
    assert not any(tmp_path.iterdir())  # refused before anything is exported


def test_the_backend_launch_argument_reaches_edge_and_server():
    from hecsb_ros.graph import split_inference_nodes

    specs = {s.role: s.parameters for s in split_inference_nodes(backend="torch", device="cuda")}
    assert specs["edge"]["backend"] == specs["server"]["backend"] == "torch"
    # the node's default
    assert "backend" not in {s.role: s.parameters for s in split_inference_nodes()}["edge"]
