"""``hecsb``: one command for every tool of the package, as subcommands.

    hecsb --help                       # the subcommands
    hecsb bench --help                 # the benchmarks
    hecsb bench fleet --help           # one tool's options
    hecsb train hecsb --beta 1e-5 --levels 3

Each subcommand is a module of :mod:`hecsb_ros.cli` with a ``main(argv)``; this file only finds it
and passes the rest of the command line on (``python -m hecsb_ros.cli.<module>`` runs the same
``main``). A module is imported only when its subcommand runs, so ``--help`` of a group is instant.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

# : Subcommand -> (module of hecsb_ros.cli, one line of help), or -> (help of the group, its
# subcommands).
COMMANDS: dict[str, tuple[str, str] | tuple[str, dict[str, tuple[str, str]]]] = {
    "demo": (
        "run_demo",
        "run the node set as processes over DDS and print a summary (the launch arguments)",
    ),
    "train": (
        "train rate levels and teachers",
        {
            "hecsb": (
                "train_hecsb",
                "HECS-B bottlenecks, one per rate level (Fashion-MNIST, camera scale, ResNet-50)",
            ),
            "baselines": (
                "train_baselines",
                "the learned baselines: svb, crbq, factorized, hyperprior",
            ),
            "teacher": ("train_teacher", "the Fashion-MNIST classifier that HECS-B splits"),
            "ledger": (
                "ledger",
                "the training ledger: core-hours, samples, levels finished and in progress",
            ),
        },
    ),
    "select": (
        "select_levels",
        "choose the rate levels to ship from candidates, on held-out images",
    ),
    "evaluate": (
        "evaluate_hecsb",
        "the HECS-B rate levels on the Fashion-MNIST test images, real coder",
    ),
    "export-onnx": ("export_onnx", "export codecs' networks and teachers to ONNX with manifests"),
    "cs-experiment": ("cs_experiment", "the compressed-sensing experiment (seed paper Fig. 7)"),
    "params-doc": ("params_doc", "write or check docs/parameters.md from hecsb_ros/params.py"),
    "bench": (
        "benchmarks; each writes CSV, Markdown and plots into benchmarks/<name>/",
        {
            "rate": (
                "bench",
                "every codec: rate-accuracy (Fig. 8), latency (Table 2), the claims",
            ),
            "fading": (
                "fading_bench",
                "a fading link: fixed rate levels against budget rate control",
            ),
            "fleet": ("fleet_bench", "N robots on one server, micro-batching off and on"),
            "frames": (
                "frames_bench",
                "camera-sized frames into a running edge: received, classified, CPU",
            ),
            "backend": (
                "backend_bench",
                "CPU convolution backends: oneDNN against native kernels",
            ),
            "onnx": (
                "onnx_bench",
                "network runtimes: PyTorch native, PyTorch oneDNN, ONNX Runtime",
            ),
            "freshness": (
                "freshness_bench",
                "result age and counts under overload: frames-in-flight limits, queue policies",
            ),
            "light-head": (
                "light_head_bench",
                "the light HECS-B head's MACs and edge times against the standard head, SVB",
            ),
            "train-speed": (
                "train_speed",
                "camera-scale training samples/s per stage: cached crops, fresh views",
            ),
        },
    ),
    "reliability": (
        "hostile input, faults and long runs (docs/reliability.md)",
        {
            "fuzz": ("fuzz", "malformed and hostile messages into the server and edge handlers"),
            "faults": (
                "faults",
                "recovery from link blackouts, restarts and foreign encoders; overload",
            ),
            "soak": ("soak", "the pipeline for a long time: memory, errors, latency"),
        },
    ),
    "data": (
        "data sets, photo lists and checkpoint manifests",
        {
            "dedup": ("dedup", "remove evaluation photos (near duplicates) from a training pool"),
            "manifest": ("manifest", "write or check the SHA256SUMS of a checkpoints folder"),
            "image-list": (
                "image_list",
                "the evaluation list (file, synset, class index) of ImageNet photos",
            ),
            "frames-folder": (
                "frames_folder",
                "photos of an evaluation list as a folder of camera frames",
            ),
        },
    ),
}

#: The console scripts kept from before ``hecsb`` (setup.py), as the subcommand each one runs.
ALIASES: dict[str, str] = {
    "hecsb_demo": "hecsb demo",
    "hecsb_train": "hecsb train hecsb",
    "hecsb_train_teacher": "hecsb train teacher",
    "hecsb_evaluate": "hecsb evaluate",
    "hecsb_cs_experiment": "hecsb cs-experiment",
    "hecsb_export_onnx": "hecsb export-onnx",
}


def subcommands() -> dict[tuple[str, ...], str]:
    """Every runnable subcommand path (``("bench", "fleet")``) -> its module under
    hecsb_ros.cli."""
    out: dict[tuple[str, ...], str] = {}
    for name, (first, second) in COMMANDS.items():
        if isinstance(second, dict):
            out.update({(name, sub): module for sub, (module, _) in second.items()})
        else:
            out[(name,)] = first
    return out


def _usage(path: Sequence[str], table: dict) -> str:
    prog = " ".join(("hecsb", *path))
    width = max(len(name) for name in table) + 2
    lines = [f"usage: {prog} {{{','.join(table)}}} ...", ""]
    if not path:
        lines += ["hecsb_ros: split-computing perception on ROS 2 with the HECS-B bottleneck.", ""]
    lines.append("subcommands:")
    for name, (first, second) in table.items():
        lines.append(f"  {name:<{width}}{first if isinstance(second, dict) else second}")
    lines += ["", f"'{prog} <subcommand> --help' gives each one's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subcommand named by the leading words of ``argv``; the rest goes to its ``main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    table: dict = COMMANDS
    path: list[str] = []
    while True:
        if not args or args[0] in ("-h", "--help"):
            print(_usage(path, table))
            return 0 if args else 2
        name = args.pop(0)
        if name not in table:
            print(_usage(path, table), file=sys.stderr)
            print(f"\n{' '.join(('hecsb', *path))}: unknown subcommand {name!r}", file=sys.stderr)
            return 2
        path.append(name)
        first, second = table[name]
        if isinstance(second, dict):
            table = second
            continue
        module = importlib.import_module(f"hecsb_ros.cli.{first}")
        return int(module.main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
