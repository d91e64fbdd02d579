"""Benchmark every codec side by side: the seed paper's Fig. 8 (rate-accuracy) and Table 2
(latency).

    python -m hecsb_ros.cli.bench                 # all 10,000 test images, ROS runs: make bench
    python -m hecsb_ros.cli.bench --quick         # 500 images, fewer settings, no ROS: make
    bench-quick python -m hecsb_ros.cli.bench --ros-only      # redo only the ROS-measured table
    from results.json

Rate points come from the registry and the shipped checkpoints' manifests (HECS-B, SVB, CR+BQ,
factorized prior, mean-scale hyperprior, every rate level) plus JPEG/WebP/PNG settings. Every test
image goes through edge encode, payload validation and server decode; edge and server halves are
timed with one torch thread at batch 1, interleaved across codecs. Each codec's operating point
(the smallest payload within 1 pp of the teacher, else its most accurate, judged on held-out
training images, ``--pick-images``, never on the test images) enters the latency table, computed
from the measured bytes and times and measured through the ROS pipeline with the link emulator.
Writes CSV, PNG and Markdown to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from hecsb_ros.cli.bench_outputs import write_outputs

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hecsb bench rate", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="500 images, fewer image-codec settings, no ROS runs"
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="default: benchmarks/ (full) or runs/bench_quick/ (--quick)",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="first N test images (default 10,000; quick 500)"
    )
    p.add_argument("--codecs", nargs="+", default=None, help="subset of codecs (default: all)")
    p.add_argument(
        "--timing-rounds",
        type=int,
        default=None,
        help="timed frames per codec (default 300; quick 30)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads of every timing")
    p.add_argument(
        "--eval-threads",
        type=int,
        default=None,
        help="torch threads while the accuracy of every rate point is measured "
        "(default: --threads); "
        "timings always run with --threads",
    )
    p.add_argument(
        "--eval-workers",
        type=int,
        default=1,
        help="processes that measure the rate points' accuracy side by side (each "
        "point still one frame "
        "at a time, one codec per process, --eval-threads split among them); "
        "timings always run "
        "in this process",
    )
    p.add_argument("--no-ros", action="store_true", help="skip the ROS-measured latency table")
    p.add_argument("--ros", action="store_true", help="with --quick: run the ROS table too")
    p.add_argument(
        "--ros-only", action="store_true", help="reuse results.json; only run the ROS table"
    )
    p.add_argument(
        "--intervals-only",
        action="store_true",
        help="reuse results.json; evaluate HECS-B and SVB again (deterministic) and "
        "recompute claim 1's "
        "paired-bootstrap interval",
    )
    p.add_argument("--ros-frames", type=int, default=200)
    p.add_argument(
        "--ros-rate-hz",
        type=float,
        default=10.0,
        help="camera rate of the ROS runs (10 Hz keeps the slowest server half below saturation)",
    )
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the ROS runs")
    p.add_argument("--progress", action="store_true")
    p.add_argument(
        "--pick-images",
        type=int,
        default=None,
        help="choose each codec's operating point on this many of the Fashion-MNIST "
        "training images "
        "the learned codecs held out (--val-images 5000 of their training), not "
        "on the test images "
        "(default 2000; quick 300; 0 = on the test images); camera scale: this "
        "many photos of "
        "--pick-list (default 100 with it)",
    )
    p.add_argument(
        "--pick-list",
        type=Path,
        default=None,
        help="camera scale: held-out training photos to choose the operating points "
        "on, by agreement "
        "with the uncompressed teacher (select_levels --held-out-list writes it); "
        "without it the "
        "operating points are chosen on the test photos",
    )
    p.add_argument(
        "--bootstrap", type=int, default=1000, help="paired bootstrap rounds of the 95%% intervals"
    )
    p.add_argument(
        "--teacher",
        default="",
        help="camera scale: the teacher (e.g. efficientnet_lite0); its shipped levels "
        "are benchmarked",
    )
    p.add_argument(
        "--test-list",
        type=Path,
        default=None,
        help="camera scale: evaluation photos, a CSV of file,class_index (-1 = no label)",
    )
    p.add_argument(
        "--frame-size",
        type=lambda t: tuple(int(v) for v in t.split("x")),
        default=(640, 480),
        help="camera scale: WIDTHxHEIGHT of the camera frames the photos become",
    )
    args = p.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = REPO / ("runs/bench_quick" if args.quick else "benchmarks")
    args.limit = args.limit if args.limit is not None else (500 if args.quick else None)
    args.timing_rounds = args.timing_rounds or (30 if args.quick else 300)
    args.with_ros = (args.ros or not args.quick) and not args.no_ros
    if args.pick_images is None:
        args.pick_images = (
            (100 if args.pick_list else 0) if args.teacher else (300 if args.quick else 2000)
        )
    if args.pick_images and args.teacher and not args.pick_list:
        p.error(
            "--pick-images at camera scale needs --pick-list (held-out photos, select_levels "
            "--held-out-list)"
        )
    if args.pick_list and not args.teacher:
        p.error(
            "--pick-list is for camera scale (--teacher); Fashion-MNIST picks on its held-out "
            "training images"
        )
    return args


def log(msg: str) -> None:
    print(msg, flush=True)


def evaluation_frames(args: argparse.Namespace):
    """(frames, encoding, labels, description, teacher setting) of the benchmark's regime.

    Fashion-MNIST (default): the test images as mono8 frames. Camera scale (``--teacher`` with
    ``--test-list``): every listed photo resized to a ``--frame-size`` bgr8 camera frame.
    """
    if not args.teacher:
        from hecsb_ros.core.datasets import load_fashion_mnist

        data = load_fashion_mnist("test").subset(args.limit)
        return (
            list(data.images),
            "mono8",
            data.labels,
            f"the first {len(data)} Fashion-MNIST test images",
            "",
        )
    from hecsb_ros.core.sources import photo_frame
    from hecsb_ros.core.training.photos import ImageList
    from hecsb_ros.core.teachers import resolve_teacher

    if args.test_list is None:
        raise SystemExit("--teacher needs --test-list CSV (file,class_index; -1 = no label)")
    listed = ImageList(
        args.test_list, resolve_teacher(args.teacher).teacher.spec(), limit=args.limit
    )
    w, h = args.frame_size
    frames = [photo_frame(f, (w, h)) for f in listed.files]
    labelled = int((listed.labels >= 0).sum())
    return (
        frames,
        "bgr8",
        listed.labels.numpy(),
        f"{len(frames)} photos of "
        f"{args.test_list.name} ({labelled} "
        f"labelled) as {w}x{h} bgr8 camera frames",
        args.teacher,
    )


def evaluate(args: argparse.Namespace, codec_names: list[str] | None) -> SimpleNamespace:
    """The teacher and every rate point of ``codec_names`` (None = all) on the benchmark's frames:
    frames, labels, the teacher's outputs and per-image correctness, the points, codecs and
    results."""
    from hecsb_ros.core.bench import rate_accuracy as ra
    from hecsb_ros.core.bench.points import discover
    from hecsb_ros.core.teachers import load_teacher

    import torch

    frames, encoding, labels, description, teacher_setting = evaluation_frames(args)
    torch.set_num_threads(args.eval_threads or args.threads)
    teacher = load_teacher(teacher_setting or None)
    reference = ra.teacher_outputs(teacher, frames, encoding)
    ref_top = reference.argmax(1)
    mask = labels >= 0
    teacher_acc = float((ref_top[mask] == labels[mask]).mean())
    teacher_top5 = float(
        np.mean([labels[i] in np.argsort(-reference[i])[:5] for i in np.flatnonzero(mask)])
    )
    points = discover(codec_names, quick=args.quick, tag=teacher.tag)
    log(
        f"teacher top-1 {100 * teacher_acc:.2f}% (top-5 {100 * teacher_top5:.2f}%) on "
        f"{int(mask.sum())} labelled "
        f"of {len(frames)} frames; {len(points)} rate points"
    )
    codecs = ra.load_codecs(points, args.threads, teacher_setting)
    torch.set_num_threads(args.eval_threads or args.threads)  # loading set --threads
    reference_top = ref_top if teacher_setting else None
    picked = None
    if args.eval_workers > 1:
        from hecsb_ros.cli.bench_workers import evaluate_in_workers

        log(f"  measuring {len(points)} rate points in {args.eval_workers} processes")
        pick = pick_set(args, teacher) if args.pick_images else None
        results, picked = evaluate_in_workers(
            args, points, reference_top, pick and pick[:3], evaluation_frames, log_point
        )
        if pick is not None:
            picked.update(teacher=pick[3], images=len(pick[0]))
    else:
        results = {}
        for p in points:
            t0 = time.time()
            results[p.key] = ra.evaluate_point(
                codecs[p.key], p, frames, labels, args.progress, encoding, reference_top
            )
            log_point(p, results[p.key], time.time() - t0)
    return SimpleNamespace(
        frames=frames,
        encoding=encoding,
        labels=labels,
        description=description,
        teacher=teacher,
        teacher_acc=teacher_acc,
        teacher_top5=teacher_top5,
        mask=mask,
        teacher_correct=np.where(mask, (ref_top == labels).astype(float), np.nan),
        points=points,
        codecs=codecs,
        results=results,
        picked=picked,
    )


def log_point(p, r, seconds: float) -> None:
    log(
        f"  {p.codec:10s} {p.setting:28s} {100 * r.accuracy:6.2f}%  {r.bytes_mean:9.1f} B  "
        f"({seconds:.0f} s)"
    )


def claim1_ratio(ev: SimpleNamespace, idx: np.ndarray) -> dict | None:
    """Claim 1's paired-bootstrap interval (HECS-B / SVB bytes) over the resamples ``idx``."""
    from hecsb_ros.core.bench import intervals

    by_codec = {
        c: [ev.results[p.key].per_image for p in ev.points if p.codec == c]
        for c in ("hecsb", "svb")
    }
    if not all(by_codec.values()):
        return None
    return intervals.claim1_interval(by_codec["hecsb"], by_codec["svb"], ev.teacher_correct, idx)


def rate_accuracy(args: argparse.Namespace) -> dict:
    """Evaluate every rate point; returns the results document (also written as results.json)."""
    from hecsb_ros.core.bench import intervals
    from hecsb_ros.core.bench import rate_accuracy as ra

    import torch

    ev = evaluate(args, args.codecs)
    frames, encoding, points, codecs, results = (
        ev.frames,
        ev.encoding,
        ev.points,
        ev.codecs,
        ev.results,
    )
    picked = (
        ev.picked
        if ev.picked is not None
        else (pick_accuracies(args, ev.teacher, codecs, points) if args.pick_images else {})
    )
    torch.set_num_threads(args.threads)
    log(
        f"timing edge and server halves: {args.timing_rounds} interleaved frames per rate point, "
        f"{args.threads} torch thread(s)"
    )
    timed = {**codecs, "teacher": ra.TeacherOnEdge(ev.teacher)}
    times = ra.time_points(
        timed,
        frames[: max(args.timing_rounds, 1)],
        args.timing_rounds,
        progress=args.progress,
        encoding=encoding,
    )
    overhead = message_overhead(codecs, frames[0], encoding)
    idx = intervals.resample_indices(len(frames), args.bootstrap)
    rows = []
    for p in points:
        r = results[p.key]
        t = times[p.key]
        r.edge_ms, r.server_ms = t["edge"], t["server"]
        r.parts_ms = {k: v for k, v in t.items() if k not in ("edge", "server")}
        row = r.row(ev.teacher_acc)
        row["message_bytes_mean"] = round(r.bytes_mean + overhead[p.key], 2)
        lo, hi = intervals.accuracy_delta_interval(r.per_image, ev.teacher_correct, idx)
        row["delta_pp_lo"], row["delta_pp_hi"] = round(lo, 2), round(hi, 2)
        acc = intervals.curve_rounds([r.per_image], idx)[1][0]
        row["accuracy_lo"], row["accuracy_hi"] = (
            round(float(v), 4) for v in np.percentile(acc, [2.5, 97.5])
        )
        if picked:
            row["pick_accuracy"], row["pick_bytes_mean"] = (
                round(picked[p.key][0], 4),
                round(picked[p.key][1], 2),
            )
        rows.append(row)
    return {
        "teacher_accuracy": ev.teacher_acc,
        "teacher_top5": ev.teacher_top5,
        "teacher": ev.teacher.spec.backbone,
        "teacher_model_id": ev.teacher.model_id,
        "teacher_edge_ms": times["teacher"]["edge"],
        "test_images": len(frames),
        "labelled_images": int(ev.mask.sum()),
        "data": ev.description,
        "encoding": encoding,
        "rows": rows,
        "timing_rounds": args.timing_rounds,
        "threads": args.threads,
        "bootstrap_rounds": args.bootstrap,
        "claim1_ratio_interval": claim1_ratio(ev, idx),
        "pick_images": picked.get("images", 0),
        "pick_teacher_accuracy": picked.get("teacher"),
        "pick_list": args.pick_list.name if args.pick_list else None,
    }


def claim1_interval(args: argparse.Namespace) -> dict | None:
    """Claim 1's paired-bootstrap interval from a fresh evaluation of the HECS-B and SVB rate
    points on the run's test images (the same seeded resamples as the full run)."""
    from hecsb_ros.core.bench import intervals

    ev = evaluate(args, ["hecsb", "svb"])
    return claim1_ratio(ev, intervals.resample_indices(len(ev.frames), args.bootstrap))


# : The learned codecs' Fashion-MNIST training held these images out (``--val-images``) of the
# train split.
TRAINING_HELD_OUT = 5000


def pick_frames(n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The first ``n`` of the Fashion-MNIST training images the learned codecs held out, as mono8
    frames."""
    from hecsb_ros.core.training.sources import held_out_indices
    from hecsb_ros.core.datasets import load_fashion_mnist

    train = load_fashion_mnist("train")
    _, val = held_out_indices(len(train), TRAINING_HELD_OUT)
    idx = val[:n].numpy()
    return list(train.images[idx]), train.labels[idx]


def pick_photo_frames(args: argparse.Namespace, teacher) -> tuple[list[np.ndarray], np.ndarray]:
    """The first ``--pick-images`` photos of ``--pick-list`` as camera frames (as the test photos
    become frames) and the uncompressed teacher's top-1 on each as its label: accuracy there is
    agreement."""
    from hecsb_ros.core.bench import rate_accuracy as ra
    from hecsb_ros.core.sources import photo_frame
    from hecsb_ros.core.training.photos import ImageList

    listed = ImageList(args.pick_list, teacher.spec, limit=args.pick_images)
    w, h = args.frame_size
    frames = [photo_frame(f, (w, h)) for f in listed.files]
    return frames, ra.teacher_outputs(teacher, frames, "bgr8").argmax(1)


def pick_set(args: argparse.Namespace, teacher) -> tuple[list[np.ndarray], np.ndarray, str, float]:
    """(frames, labels, encoding, the teacher's accuracy) of the held-out training images the
    operating points are chosen on, logged. Camera scale: the labels are the teacher's own top-1,
    so its accuracy is 1 without a second pass."""
    from hecsb_ros.core.bench import rate_accuracy as ra

    if args.teacher:
        frames, labels = pick_photo_frames(args, teacher)
        encoding, teacher_acc = "bgr8", 1.0
    else:
        frames, labels = pick_frames(args.pick_images)
        encoding = "mono8"
        teacher_acc = float(
            (ra.teacher_outputs(teacher, frames, encoding).argmax(1) == labels).mean()
        )
    log(
        f"operating points are chosen on {len(frames)} held-out training images (teacher "
        f"{100 * teacher_acc:.2f}%)"
    )
    return frames, labels, encoding, teacher_acc


def pick_accuracies(args: argparse.Namespace, teacher, codecs: dict, points) -> dict:
    """Accuracy of the teacher (``"teacher"``) and ``(accuracy, mean payload bytes)`` of every rate
    point on the held-out training images the operating points are chosen on (camera scale:
    agreement with the teacher on held-out pool photos, so the teacher's is 1)."""
    from hecsb_ros.core.bench import rate_accuracy as ra

    frames, labels, encoding, teacher_acc = pick_set(args, teacher)
    out: dict = {"teacher": teacher_acc, "images": len(frames)}
    for p in points:
        r = ra.evaluate_point(codecs[p.key], p, frames, labels, False, encoding)
        out[p.key] = (r.accuracy, r.bytes_mean)
    return out


def write_frames(args: argparse.Namespace, folder: Path, count: int = 100) -> None:
    """The first ``count`` evaluation photos as ``--frame-size`` PNG camera frames (the ROS runs'
    source), with their classes in the folder's ``labels.csv`` (-1 = unknown), which the folder
    source reads."""
    from hecsb_ros.core.sources import write_frames_folder

    frames, _, labels, _, _ = evaluation_frames(args)
    write_frames_folder(folder, frames[:count], labels[:count])


def message_overhead(codecs: dict, frame, encoding: str) -> dict[str, int]:
    """Bytes a serialized ``CompressedLatent`` adds to the payload (header, codec and model-id
    strings, shape, timings; CDR alignment may add up to 3 B more), per rate point, from one real
    frame."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from hecsb_ros.nodes.conversions import latent_msg

    out = {}
    for key, codec in codecs.items():
        enc = codec.encode(frame, encoding)
        msg = latent_msg(
            enc, Header(frame_id="camera"), 0, codec.name, codec.model_id, codec.quality, 0, 0.0
        )
        out[key] = len(serialize_message(msg)) - len(enc.data)
    return out


def operating_points(
    rows: list[dict], teacher_acc: float, pick_teacher_acc: float | None = None
) -> dict[str, dict]:
    """Each codec's operating point: on the held-out images' accuracies (``pick_accuracy``, against
    ``pick_teacher_acc``) where the rows have them, else on the test rows' own."""
    from hecsb_ros.core.bench.compare import operating_point
    from hecsb_ros.core.bench.points import LABELS

    held_out = pick_teacher_acc is not None and all("pick_bytes_mean" in r for r in rows)
    out = {}
    for codec in LABELS:
        pts = [
            (r["pick_bytes_mean"], r["pick_accuracy"], r)
            if held_out
            else (r["bytes_mean"], r["accuracy"], r)
            for r in rows
            if r["codec"] == codec
        ]
        if pts:
            out[codec] = operating_point(pts, pick_teacher_acc if held_out else teacher_acc)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from hecsb_ros.core.codecs import CodecSettings
    from hecsb_ros.core.codecs.base import configure_torch

    # what every codec applies when it loads (threads, CPU convolution backend), set before the
    # machine description records it
    configure_torch(CodecSettings(threads=args.threads))
    from hecsb_ros.core.bench import latency
    from hecsb_ros.core.bench.report import machine_description

    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m hecsb_ros.cli.bench " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    start = time.time()
    if args.intervals_only:
        doc = json.loads((args.out_dir / "results.json").read_text())
        doc["claim1_ratio_interval"] = claim1_interval(args)
        doc["command_intervals"] = command
        write_outputs(doc, args)
        log(f"claim 1 interval: {doc['claim1_ratio_interval']}; wrote {args.out_dir}")
        return 0
    if args.ros_only:
        doc = json.loads((args.out_dir / "results.json").read_text())
        doc["command_ros"] = command
    else:
        machine = machine_description()
        doc = rate_accuracy(args)
        doc.update(command=command, machine=machine)
        doc["operating"] = operating_points(
            doc["rows"], doc["teacher_accuracy"], doc.get("pick_teacher_accuracy")
        )
        doc["latency_computed"] = [
            r.as_dict() for r in latency.computed_rows(list(doc["operating"].values()))
        ]
        doc["run_minutes"] = (time.time() - start) / 60
        doc.pop("latency_ros", None)
        write_outputs(doc, args)  # rate-accuracy results are on disk before the long ROS runs
    if args.with_ros or args.ros_only:
        t0 = time.time()
        domain = (
            args.domain_id
            if args.domain_id is not None
            else 201 + int(np.random.default_rng().integers(0, 30))
        )
        extra: tuple[str, ...] = ()
        # camera scale: the camera source publishes the evaluation photos as camera frames
        if args.teacher:
            frames_dir = args.out_dir / "frames"
            write_frames(args, frames_dir)
            extra = ("--teacher", args.teacher, "--source", "folder", "--path", str(frames_dir))
        rows = latency.measured_rows(
            list(doc["operating"].values()),
            args.ros_frames,
            args.ros_rate_hz,
            domain,
            log,
            extra=extra,
        )
        doc["latency_ros"] = [r.as_dict() for r in rows]
        doc["ros_minutes"] = (time.time() - t0) / 60
        doc["ros_frames"], doc["ros_rate_hz"] = args.ros_frames, args.ros_rate_hz
    if not args.ros_only:
        doc["run_minutes"] = (time.time() - start) / 60
    write_outputs(doc, args)
    for c in doc["claims"]:
        verdict = "n/a" if c["holds"] is None else ("holds" if c["holds"] else "does NOT hold")
        fig = c["figure"]
        log(
            f"claim: {c['claim']}: {verdict} ({'n/a' if fig is None else round(fig, 3)}; "
            f"{c['note']})"
        )
    log(f"wrote {args.out_dir} in {(time.time() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
