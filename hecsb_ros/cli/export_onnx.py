"""Export learned codecs' networks and teachers to ONNX (opset 17), with a JSON manifest per
export.

    python -m hecsb_ros.cli.export_onnx --codec hecsb --quality 6 --teacher efficientnet_lite0
    --out DIR hecsb_export_onnx ...                                  # the same, as the installed
    console script python -m hecsb_ros.cli.export_onnx --teacher-only --teacher efficientnet_lite0
    --out DIR python -m hecsb_ros.cli.export_onnx --all --out DIR    # every shipped level of every
    learned codec
                                                           # (Fashion-MNIST and EfficientNet-Lite0)
                                                           + teachers

Each export is a folder ``DIR/{kind}_{tag}_r{LEVEL}/`` holding ``edge.onnx`` (normalised image ->
latent before entropy coding), ``server.onnx`` (decoded latent -> logits) and ``manifest.json``
(model id, input and output names and shapes, normalisation, opset, versions, SHA-256 of each
file, what stays in PyTorch); a teacher's is ``DIR/teacher_{tag}/teacher.onnx``. ``DIR/index.json``
lists the folders written. The entropy coder is not exported: it stays in Python (see
:mod:`hecsb_ros.core.onnx_export`). ``--batch B`` fixes the batch dimension (default: dynamic).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: Teachers of the shipped levels (--all): '' is the shipped Fashion-MNIST teacher.
ALL_TEACHERS = ("", "efficientnet_lite0")


def _log(text: str) -> None:
    print(f"[export_onnx] {text}", file=sys.stderr, flush=True)


def export_codec(
    kind: str, quality: int, teacher: str, out: Path, batch: int | None
) -> tuple[str, dict]:
    """Export one learned codec level into ``out/{kind}_{tag}_r{LEVEL}``; returns (folder name,
    manifest)."""
    import torch

    from hecsb_ros.core.codecs import CodecSettings, codec_class
    from hecsb_ros.core.codecs.learned import LearnedCodec
    from hecsb_ros.core.onnx_export import export_split

    cls = codec_class(kind)
    if not issubclass(cls, LearnedCodec):
        raise ValueError(
            f"codec {kind!r} has no networks of its own to export (an image codec "
            "runs the whole "
            "teacher on the server: export it with --teacher-only)"
        )
    torch.set_num_threads(1)
    codec = cls(CodecSettings(quality=quality, teacher=teacher, threads=1))
    name = codec.path.stem
    start = time.time()
    manifest = export_split(codec.split, out / name, batch)
    diffs = {part: net["max_abs_diff_vs_torch"] for part, net in manifest["networks"].items()}
    _log(
        f"{name}: {', '.join(manifest['networks'])} in {time.time() - start:.1f} s; max |ONNX "
        f"Runtime - torch| {diffs}"
    )
    return name, manifest


def export_teacher_named(teacher: str, out: Path, batch: int | None) -> tuple[str, dict]:
    """Export the whole teacher a ``teacher`` setting names into ``out/teacher_{tag}``; returns
    (folder name, manifest)."""
    import torch

    from hecsb_ros.core.onnx_export import export_teacher
    from hecsb_ros.core.teachers import load_teacher

    torch.set_num_threads(1)
    classifier = load_teacher(teacher or None)
    name = f"teacher_{classifier.tag or classifier.model_id}"
    manifest = export_teacher(classifier, out / name, batch)
    _log(
        f"{name}: teacher.onnx; max |ONNX Runtime - torch| "
        f"{manifest['networks']['teacher']['max_abs_diff_vs_torch']}"
    )
    return name, manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hecsb export-onnx",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--codec", help="learned codec (hecsb, svb, crbq, factorized, hyperprior)")
    p.add_argument("--quality", type=int, default=-1, help="rate level; -1 = the codec's default")
    p.add_argument(
        "--teacher",
        default="",
        help="teacher setting as the nodes take it ('' = the "
        "shipped Fashion-MNIST "
        "teacher, efficientnet_lite0, ...)",
    )
    p.add_argument("--teacher-only", action="store_true", help="export the whole teacher only")
    p.add_argument(
        "--all",
        action="store_true",
        help="every shipped level of every learned codec "
        "for the "
        "Fashion-MNIST and EfficientNet-Lite0 "
        "teachers, and both teachers",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="fixed batch size (default: a dynamic batch dimension)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    args = p.parse_args(argv)
    if sum(map(bool, (args.codec, args.teacher_only, args.all))) != 1:
        p.error("give exactly one of --codec, --teacher-only, --all")
    if args.batch is not None and args.batch < 1:
        p.error("--batch must be at least 1")
    try:
        from hecsb_ros.core.onnx_export import require_onnx

        require_onnx()
        manifests = []
        if args.all:
            from hecsb_ros.core.codecs.learned import shipped_levels
            from hecsb_ros.core.learned import list_models

            for teacher in ALL_TEACHERS:
                manifests.append(export_teacher_named(teacher, args.out, args.batch))
                for kind in list_models():
                    for level in shipped_levels(kind, teacher):
                        manifests.append(export_codec(kind, level, teacher, args.out, args.batch))
        elif args.teacher_only:
            manifests.append(export_teacher_named(args.teacher, args.out, args.batch))
        else:
            manifests.append(
                export_codec(args.codec, args.quality, args.teacher, args.out, args.batch)
            )
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"export_onnx: {exc}", file=sys.stderr)
        return 2
    index = args.out / "index.json"
    entries = json.loads(index.read_text()) if index.exists() else {}
    for name, m in manifests:
        entries[name] = {
            "kind": m["kind"],
            "model_id": m.get("model_id"),
            "teacher": m["teacher"],
            "files": {part: f"{name}/{net['file']}" for part, net in m["networks"].items()},
        }
    index.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(manifests)} export(s) to {args.out} (index.json lists them)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
