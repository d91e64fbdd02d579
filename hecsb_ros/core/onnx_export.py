"""ONNX export of the learned codecs' networks and of the teachers (opset 17).

A learned codec (:class:`~hecsb_ros.core.learned.split.Split`) is exported as two networks; the
entropy coder between them stays in Python (CompressAI's tables, :mod:`hecsb_ros.core.entropy`):

- ``edge.onnx``: ``image`` ``(N, C, H, W)``, normalised for the teacher as
  :func:`~hecsb_ros.core.teachers.spec.images_to_tensor` makes it -> ``latent``, the unquantised
  latent the coder codes (:meth:`Split.latent`);
- ``server.onnx``: ``latent``, as the coder decodes it -> ``logits`` ``(N, K)``: the model's server
  network and the teacher's tail (or, behind an input codec, the whole teacher on the reconstructed
  pixels): ``Split.classify(Split.features(z))``.

A teacher is exported whole as ``teacher.onnx``: ``image`` -> ``logits`` (the network the image
codecs' server half runs).

The mean-scale hyperprior is the exception that keeps part of its networks in PyTorch: its
``edge.onnx`` is ``g_a`` only. ``h_s`` maps the hyper-latent to the scales that choose ``y``'s CDF
tables and to the means ``y`` is coded around; edge and server must compute them bit for bit alike,
and ONNX Runtime's kernels do not round as PyTorch's do (differences of about 1e-6), so a table
index could differ between an edge running ``h_s`` in one runtime and a server running it in the
other, and the payload would not decode. ``h_s`` therefore runs in PyTorch on both ends, whatever
the backend, as does ``h_a`` (a few small layers, whose output is rounded and coded by the same
coder). The manifest lists such parts under ``kept_in_torch``.

Shapes are static except the batch dimension ``N`` (dynamic by default, so that a server can
classify micro-batches; ``batch=B`` fixes it, e.g. for a TensorRT engine without an optimisation
profile). Export follows the facts in the machine notes: ``torch.onnx.export(..., opset_version=17,
dynamo=False)`` after ``requires_grad_(False)`` on every parameter (EfficientNet-Lite's static
"same" padding fails otherwise).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hecsb_ros.core.store import sha256_of
from hecsb_ros.core.teachers.classifier import Classifier

if TYPE_CHECKING:  # a type hint only: exporting a classic codec's teacher needs no CompressAI
    from hecsb_ros.core.learned.split import Split

OPSET = 17
#: Version of what this module writes (bump when the exported graphs or the manifest change: the
#: runtime cache keys on it).
EXPORT_FORMAT = "hecsb_ros.onnx/1"
MANIFEST_NAME = "manifest.json"
INSTALL = (
    "pip install onnx==1.17.0 onnxruntime==1.20.1 "
    "(requirements.txt pins them; scripts/setup.sh installs them)"
)
#: What each exported network is called, per part.
IO_NAMES = {
    "edge": ("image", "latent"),
    "server": ("latent", "logits"),
    "teacher": ("image", "logits"),
}


class EdgeNetwork(nn.Module):
    """A split's edge network: normalised image ``(N, C, H, W)`` -> unquantised latent
    (:meth:`Split.latent`)."""

    def __init__(self, split: Split) -> None:
        super().__init__()
        self.model = split.model
        spec = split.teacher.spec
        self.pixels = split.model.input_space == "pixels"
        self.register_buffer(
            "mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.edge(x * self.std + self.mean if self.pixels else x)


class ServerNetwork(nn.Module):
    """A split's server network: decoded latent ``(N, ...)`` -> logits ``(N, K)`` (features, then
    the tail)."""

    def __init__(self, split: Split) -> None:
        super().__init__()
        self.model, self.tail = split.model, split.tail

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.tail(self.model.synthesize(z))


def kept_in_torch(split: Split) -> dict[str, str]:
    """Parts of ``split``'s networks that are not in the exported files and why (empty for most
    kinds)."""
    if split.kind == "hyperprior":
        return {
            "h_a": "hyper-analysis: its output is rounded and coded by the hyperprior coder "
            "(PyTorch)",
            "h_s": "hyper-synthesis: its scales pick y's CDF tables and its means centre y's "
            "symbols; edge and "
            "server must compute them bit-identically, so both run it in PyTorch",
        }
    return {}


def require_onnx() -> Any:
    """The ``onnx`` module, or ImportError saying how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the onnx package: {INSTALL}") from exc
    return onnx


@dataclass(frozen=True)
class ExportedNetwork:
    """One exported file: its part, path, input and output names and shapes (``N`` = batch)."""

    part: str
    path: Path
    input_name: str
    input_shape: tuple[int | str, ...]
    output_name: str
    output_shape: tuple[int | str, ...]
    max_abs_diff: float | None

    def to_dict(self, folder: Path) -> dict[str, Any]:
        return {
            "file": self.path.relative_to(folder).as_posix(),
            "sha256": sha256_of(self.path),
            "input": {
                "name": self.input_name,
                "shape": list(self.input_shape),
                "dtype": "float32",
            },
            "output": {
                "name": self.output_name,
                "shape": list(self.output_shape),
                "dtype": "float32",
            },
            "max_abs_diff_vs_torch": self.max_abs_diff,
        }


def export_module(
    module: nn.Module,
    example: torch.Tensor,
    path: Path | str,
    part: str,
    batch: int | None = None,
    check: bool = True,
) -> ExportedNetwork:
    """Export ``module`` (eval mode, on the CPU) traced with ``example`` ``(1, ...)`` to ``path``.

    ``batch``: None keeps the batch dimension dynamic; an int fixes it. ``check``: run
    ``onnx.checker`` on the file and, where ONNX Runtime is installed, compare its output with
    PyTorch's on ``example`` (``max_abs_diff``; None without ONNX Runtime).
    """
    onnx = require_onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    in_name, out_name = IO_NAMES[part]
    module = module.eval()
    if next(module.parameters(), torch.empty(0)).device.type != "cpu":
        raise ValueError("export a module on the CPU")
    example = example.to(torch.float32)
    if batch is not None:
        example = example.expand(batch, *example.shape[1:]).contiguous()
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        with torch.no_grad(), warnings.catch_warnings():
            # the exporter's notes on slices it does not fold and on TorchScript's deprecation
            # change nothing (the TorchScript-based exporter is chosen on purpose: dynamo=False,
            # see the module docstring)
            warnings.filterwarnings(
                "ignore",
                message=".*(Constant "
                "folding|torch.jit.script|legacy "
                "TorchScript-based"
                "|The feature will be removed).*",
            )
            expected = module(example)
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[in_name],
                output_names=[out_name],
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
                dynamic_axes=None
                if batch is not None
                else {in_name: {0: "N"}, out_name: {0: "N"}},
            )
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    diff = None
    if check:
        onnx.checker.check_model(str(path), full_check=True)
        try:
            import onnxruntime
        except ImportError:
            onnxruntime = None
        if onnxruntime is not None:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
            got = session.run([out_name], {in_name: example.numpy()})[0]
            diff = float((torch.from_numpy(got) - expected).abs().max())
    lead: tuple[int | str, ...] = (batch,) if batch is not None else ("N",)
    return ExportedNetwork(
        part,
        path,
        in_name,
        lead + tuple(example.shape[1:]),
        out_name,
        lead + tuple(expected.shape[1:]),
        diff,
    )


def example_image(spec: Any, seed: int = 0) -> torch.Tensor:
    """A fixed pseudo-random image ``(1, C, H, W)``, normalised as the teacher's inputs are."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(1, spec.in_channels, *spec.input_size, generator=g)
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return (pixels - mean) / std


def versions() -> dict[str, str]:
    """Versions of what made an export (torch, onnx, onnxruntime where installed, Python)."""
    out = {"torch": torch.__version__, "python": platform.python_version()}
    for name in ("onnx", "onnxruntime"):
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            out[name] = "not installed"
    return out


def split_key(split: Split, batch: int | None = None) -> str:
    """16 hex characters naming an export of ``split``: its model id, the teacher's, the batch,
    this module's format, the opset and the torch version (the runtime cache's folder name)."""
    ident = {
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "torch": torch.__version__,
        "kind": split.kind,
        "model_id": split.model_id,
        "teacher_model_id": split.teacher.model_id,
        "batch": batch,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def teacher_key(classifier: Classifier, batch: int | None = None) -> str:
    """Like :func:`split_key`, for a whole teacher."""
    ident = {
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "torch": torch.__version__,
        "teacher": classifier.spec.backbone,
        "teacher_model_id": classifier.model_id,
        "batch": batch,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _spec_dict(spec: Any) -> dict[str, Any]:
    return {
        "input_size": list(spec.input_size),
        "in_channels": spec.in_channels,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "pixels": "x = (rgb_or_grey_uint8 / 255 - mean) / std, (N, C, H, W) float32",
        "resize": spec.resize,
        "crop_fraction": spec.crop_fraction,
        "interpolation": spec.interpolation,
        "num_classes": spec.num_classes,
    }


def write_manifest(folder: Path, fields: dict[str, Any], networks: list[ExportedNetwork]) -> Path:
    """``folder/manifest.json``: ``fields`` and each network's file, hash, names and shapes
    (written last)."""
    manifest = {
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        **fields,
        "networks": {n.part: n.to_dict(folder) for n in networks},
        "versions": versions(),
        "exported_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = folder / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def export_split(
    split: Split, folder: Path | str, batch: int | None = None, check: bool = True
) -> dict[str, Any]:
    """Write ``edge.onnx``, ``server.onnx`` and ``manifest.json`` of ``split`` into ``folder``;
    returns the manifest."""
    folder = Path(folder)
    if next(split.model.parameters()).device.type != "cpu":
        raise ValueError("export a split loaded on the CPU (device='cpu')")
    x = example_image(split.teacher.spec)
    with torch.no_grad():
        edge = EdgeNetwork(split).eval()
        y = edge(x)
        z = split.coder.quantize(y[0])[None]  # the latent a server decodes
    networks = [
        export_module(edge, x, folder / "edge.onnx", "edge", batch, check),
        export_module(
            ServerNetwork(split).eval(), z, folder / "server.onnx", "server", batch, check
        ),
    ]
    fields = {
        "kind": split.kind,
        "model_id": split.model_id,
        "checkpoint": split.path.name,
        "rate_level": split.metadata.get("rate_level"),
        "teacher": split.teacher.spec.backbone,
        "teacher_model_id": split.teacher.model_id,
        "teacher_tag": split.teacher.tag,
        "key": split_key(split, batch),
        "input_space_of_model": split.model.input_space,
        "normalisation": _spec_dict(split.teacher.spec),
        "kept_in_torch": kept_in_torch(split),
        "entropy_coder": "Python (hecsb_ros.core.entropy / the model's coder): unchanged, "
        "the same payload "
        "bytes for either runtime",
    }
    write_manifest(folder, fields, networks)
    return json.loads((folder / MANIFEST_NAME).read_text())


def export_teacher(
    classifier: Classifier, folder: Path | str, batch: int | None = None, check: bool = True
) -> dict[str, Any]:
    """Write ``teacher.onnx`` (normalised image -> logits) and ``manifest.json`` into
    ``folder``."""
    folder = Path(folder)
    if next(classifier.model.parameters()).device.type != "cpu":
        raise ValueError("export a teacher loaded on the CPU (device='cpu')")
    net = export_module(
        classifier.model,
        example_image(classifier.spec),
        folder / "teacher.onnx",
        "teacher",
        batch,
        check,
    )
    fields = {
        "kind": "teacher",
        "teacher": classifier.spec.backbone,
        "teacher_model_id": classifier.model_id,
        "teacher_tag": classifier.tag,
        "weights": classifier.path.name,
        "key": teacher_key(classifier, batch),
        "normalisation": _spec_dict(classifier.spec),
        "kept_in_torch": {},
    }
    write_manifest(folder, fields, [net])
    return json.loads((folder / MANIFEST_NAME).read_text())


def check_folder(folder: Path | str) -> dict[str, Any]:
    """The manifest of an export ``folder`` after checking that every file it lists is there with
    its recorded SHA-256; ValueError says what is wrong (a half-written or altered export)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder}: no readable {MANIFEST_NAME} ({exc})") from None
    if manifest.get("format") != EXPORT_FORMAT:
        raise ValueError(
            f"{folder}: export format {manifest.get('format')!r}, expected {EXPORT_FORMAT!r}"
        )
    for part, net in manifest.get("networks", {}).items():
        path = folder / net["file"]
        if not path.is_file() or sha256_of(path) != net["sha256"]:
            raise ValueError(
                f"{folder}: {part} network {path.name} is missing or differs from its manifest"
            )
    return manifest
