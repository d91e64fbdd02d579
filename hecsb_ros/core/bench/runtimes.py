"""Run time of the codecs' networks in three runtimes: PyTorch native kernels, PyTorch oneDNN, ONNX
Runtime.

For each teacher (Fashion-MNIST, EfficientNet-Lite0 at 224 x 224), the default rate level of every
learned codec (its edge network: normalised image -> latent; its server network: decoded latent ->
logits) and the whole teacher (image -> logits) are timed at batch 1 and batch 8, one thread. All
calls are interleaved: each round times every network, batch and runtime once, the runtimes in a
rotating order, so that drift in the machine's load hits them alike; the reported figure is the
median over rounds. The entropy coder is not timed: it is the same Python code for every runtime.
``torch.backends.mkldnn`` is switched per call (``torch.backends.mkldnn.flags``), which is what the
codecs' ``onednn`` setting does process-wide.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

RUNTIMES = ("torch_native", "torch_onednn", "onnxruntime")


@dataclass
class Network:
    """One network to time: ``torch_fn`` and ``ort_fn`` map the same input ``(N, ...)`` to the same
    output."""

    scale: str
    model: str
    half: str
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    ort_fn: Callable[[torch.Tensor], torch.Tensor]
    example: torch.Tensor  # (1, ...)


def networks_for(teacher: str, kinds: list[str], cache: str, scale: str) -> list[Network]:
    """The edge and server networks of each learned codec ``kinds`` at its default level for
    ``teacher``, and the whole teacher, each with its ONNX Runtime session (1 thread)."""
    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.core.onnx_export import EdgeNetwork, ServerNetwork, example_image
    from hecsb_ros.core.onnx_runtime import OrtSplit, OrtTeacher

    out: list[Network] = []
    teacher_model = None
    for kind in kinds:
        codec = create_codec(kind, CodecSettings(teacher=teacher, threads=1))
        split = codec.split
        ort = OrtSplit(split, threads=1, cache=cache)
        x = example_image(split.teacher.spec)
        edge, server = EdgeNetwork(split).eval(), ServerNetwork(split).eval()
        with torch.inference_mode():
            z = split.coder.quantize(edge(x)[0])[None]
        name = f"{kind} r{codec.quality}"
        out.append(Network(scale, name, "edge", edge, ort.latent, x))
        out.append(Network(scale, name, "server", server, ort.logits, z))
        teacher_model = split.teacher
    if teacher_model is not None:
        ort_teacher = OrtTeacher(teacher_model, threads=1, cache=cache)
        out.append(
            Network(
                scale,
                "teacher (whole)",
                "server",
                teacher_model.model.eval(),
                ort_teacher,
                example_image(teacher_model.spec),
            )
        )
    return out


def _call(net: Network, runtime: str, x: torch.Tensor) -> torch.Tensor:
    if runtime == "onnxruntime":
        return net.ort_fn(x)
    with torch.backends.mkldnn.flags(enabled=runtime == "torch_onednn"), torch.inference_mode():
        return net.torch_fn(x)


def time_networks(
    nets: list[Network],
    batches: tuple[int, ...],
    rounds: int,
    warmup: int = 2,
    log: Callable[[str], None] = print,
) -> dict[tuple[str, str, str, int, str], list[float]]:
    """Milliseconds per call: (scale, model, half, batch, runtime) -> one value per round.

    Before timing, each network's outputs in the three runtimes are compared (max |diff| into the
    log); ``warmup`` untimed calls per runtime and batch come first.
    """
    torch.set_num_threads(1)
    inputs = {
        (id(n), b): n.example.expand(b, *n.example.shape[1:]).contiguous()
        for n in nets
        for b in batches
    }
    for n in nets:
        for b in batches:
            outs = {r: _call(n, r, inputs[id(n), b]) for r in RUNTIMES}
            for _ in range(warmup - 1):
                for r in RUNTIMES:
                    _call(n, r, inputs[id(n), b])
            diff = max(float((outs[r] - outs["torch_native"]).abs().max()) for r in RUNTIMES)
            log(f"{n.scale} {n.model} {n.half} batch {b}: outputs agree to {diff:.2e}")
    times: dict[tuple[str, str, str, int, str], list[float]] = {}
    start = time.time()
    for k in range(rounds):
        order = RUNTIMES[k % 3 :] + RUNTIMES[: k % 3]
        for n in nets:
            for b in batches:
                x = inputs[id(n), b]
                for r in order:
                    t0 = time.perf_counter_ns()
                    _call(n, r, x)
                    times.setdefault((n.scale, n.model, n.half, b, r), []).append(
                        (time.perf_counter_ns() - t0) / 1e6
                    )
        log(f"round {k + 1}/{rounds} ({time.time() - start:.0f} s)")
    return times


def summarise(times: dict[tuple[str, str, str, int, str], list[float]]) -> list[dict]:
    """One row per (scale, model, half, batch): median ms per runtime and the ratios PyTorch / ONNX
    Runtime."""
    keys = sorted({k[:4] for k in times}, key=lambda k: (k[0], k[1], k[2], k[3]))
    rows = []
    for scale, model, half, batch in keys:
        med = {r: float(np.median(times[scale, model, half, batch, r])) for r in RUNTIMES}
        rows.append(
            {
                "scale": scale,
                "model": model,
                "half": half,
                "batch": batch,
                **{f"{r}_ms": round(med[r], 3) for r in RUNTIMES},
                "native_over_ort": round(med["torch_native"] / med["onnxruntime"], 2),
                "onednn_over_ort": round(med["torch_onednn"] / med["onnxruntime"], 2),
                "rounds": len(times[scale, model, half, batch, "onnxruntime"]),
            }
        )
    return rows
