"""The ONNX Runtime backend: a codec's networks as ``onnxruntime.InferenceSession`` objects.

``backend: onnxruntime`` (:class:`~hecsb_ros.core.codecs.base.CodecSettings`, the nodes' ROS
parameter) runs the networks that :mod:`hecsb_ros.core.onnx_export` exports in ONNX Runtime; the
preprocessing, the entropy coder and the payload are unchanged, so an edge on one backend talks to
a server on the other.

The exported files are kept in a cache folder (``onnx_cache``; '' = ``$HECSB_ONNX_CACHE``, else
``$XDG_CACHE_HOME/hecsb_ros/onnx``, else ``~/.cache/hecsb_ros/onnx``), one sub-folder per export,
named by :func:`~hecsb_ros.core.onnx_export.split_key` (model id, teacher, opset, torch version):
exported on first use, loaded afterwards. Every file is checked against the SHA-256 its manifest
records before a session is made from it; a folder that fails the check is exported again. Two
processes exporting the same model at once each write their own temporary folder and the first
rename wins.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from hecsb_ros.core.onnx_export import (
    IO_NAMES,
    INSTALL,
    check_folder,
    export_split,
    export_teacher,
    split_key,
    teacher_key,
)
from hecsb_ros.core.teachers.classifier import Classifier

if TYPE_CHECKING:  # a type hint only: classic codecs' processes need no CompressAI
    from hecsb_ros.core.learned.split import Split

#: Runtimes the codecs' networks can run in.
BACKENDS = ("torch", "onnxruntime")


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or ImportError saying how to install it (or to use backend
    torch)."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            "backend 'onnxruntime' needs ONNX Runtime and onnx, which are not "
            f"installed: {INSTALL}; "
            "or run with backend 'torch'"
        ) from exc
    return onnxruntime


def check_backend(backend: str) -> None:
    """ValueError unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


def cache_dir(setting: str = "") -> Path:
    """The ONNX cache folder for an ``onnx_cache`` setting (see the module docstring)."""
    if setting:
        return Path(setting).expanduser()
    if os.environ.get("HECSB_ONNX_CACHE"):
        return Path(os.environ["HECSB_ONNX_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hecsb_ros" / "onnx"


def cached_export(folder: Path, export: Callable[[Path], Any]) -> dict[str, Any]:
    """The manifest of the export in ``folder``, made with ``export(tmp_folder)`` when it is
    missing or fails :func:`~hecsb_ros.core.onnx_export.check_folder` (written to a temporary
    folder, then renamed)."""
    try:
        return check_folder(folder)
    except ValueError:
        pass
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        export(tmp)
        if folder.exists():  # a broken export (failed its check above): replace it
            try:
                check_folder(folder)
            except ValueError:
                shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process renamed its export first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return check_folder(folder)


def check_device(device: str) -> None:
    """ValueError unless ``device`` is the CPU: the backend runs ONNX Runtime's CPU execution
    provider."""
    if torch.device(device).type != "cpu":
        raise ValueError(
            f"backend 'onnxruntime' runs on the CPU, not on device {device!r}: set "
            "backend 'torch' to "
            "run PyTorch on the GPU (on a Jetson, a TensorRT engine built from the "
            "exported files: "
            "docs/deployment.md)"
        )


class OrtNetwork:
    """One exported network in an ``InferenceSession``: ``__call__(x) -> y`` on torch tensors (CPU,
    float32).

    ``threads``: intra-op threads (the codec's ``threads`` setting; 0 = ONNX Runtime's default, one
    per core).
    """

    def __init__(self, path: Path | str, part: str, threads: int = 0) -> None:
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name, self.output_name = IO_NAMES[part]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run([self.output_name], {self.input_name: arr})[0])


class OrtSplit:
    """A split's two networks in ONNX Runtime: :meth:`latent` (edge) and :meth:`logits`
    (server)."""

    def __init__(
        self, split: Split, threads: int = 0, cache: str = "", device: str = "cpu"
    ) -> None:
        require_onnxruntime()
        check_device(device)
        folder = (
            cache_dir(cache)
            / f"{split.kind}_{split.teacher.tag or 'teacher'}_{split.model_id}_{split_key(split)}"
        )
        self.manifest = cached_export(folder, lambda tmp: export_split(split, tmp))
        self.folder = folder
        self.edge = OrtNetwork(folder / "edge.onnx", "edge", threads)
        self.server = OrtNetwork(folder / "server.onnx", "server", threads)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(N, C, H, W)`` -> unquantised latents ``(N, ...)`` (as
        :meth:`Split.latent`)."""
        return self.edge(x)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded latents ``(N, ...)`` -> logits ``(N, K)`` (as
        ``Split.classify(Split.features(z))``)."""
        return self.server(z)


class OrtTeacher:
    """A whole teacher in ONNX Runtime: normalised images ``(N, C, H, W)`` -> logits ``(N, K)``."""

    def __init__(
        self, classifier: Classifier, threads: int = 0, cache: str = "", device: str = "cpu"
    ) -> None:
        require_onnxruntime()
        check_device(device)
        folder = cache_dir(cache) / "_".join(
            ("teacher", classifier.tag or "custom", classifier.model_id, teacher_key(classifier))
        )
        self.manifest = cached_export(folder, lambda tmp: export_teacher(classifier, tmp))
        self.folder = folder
        self.network = OrtNetwork(folder / "teacher.onnx", "teacher", threads)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)
