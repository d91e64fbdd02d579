"""hecsb_demo: run the split-inference node set as processes over DDS, with a live progress line.

For machines without ``ros2 launch``; the nodes come from the same description as the launch file
(:func:`hecsb_ros.graph.split_inference_nodes`) and run through the project's process runner
(:mod:`hecsb_ros.runner`), edge and server as lifecycle nodes brought to active in order before the
camera starts (``--lifecycle false``: plain nodes). Ends with a summary: frames, accuracy, payload
bytes per frame, kbit/s, latency per stage (the link apart from the time a latent waited at the
server) and where every camera frame went (classified, skipped for a newer one, lost, refused).

    python -m hecsb_ros.cli.run_demo --codec png --profile 4g --frames 200
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from hecsb_ros.core.stats import FrameRecord, LinkStatsAccumulator, percentile
from hecsb_ros.graph import LAUNCH_ARGUMENTS, robot_namespaces, split_inference_nodes
from hecsb_ros.params import DEFAULT_CODEC
from hecsb_ros.monitor import Monitor, ResultRecord
from hecsb_ros.runner import Pipeline


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="hecsb demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for name, (default, help_text) in LAUNCH_ARGUMENTS.items():
        if name == "frames":
            continue
        ap.add_argument(f"--{name.replace('_', '-')}", default=default, help=help_text)
    ap.add_argument(
        "--frames",
        type=int,
        default=200,
        help="Frames to classify, then stop (with --robots: from each robot)",
    )
    ap.add_argument("--timeout", type=float, default=600.0, help="Give up after this many seconds")
    ap.add_argument(
        "--idle-timeout",
        type=float,
        default=20.0,
        help="Stop when no result arrived for this long after the first one",
    )
    ap.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for all processes")
    ap.add_argument("--json", type=Path, default=None, help="Also write the summary as JSON here")
    ap.add_argument(
        "--show-results",
        action="store_true",
        help="Print every classification (frame, class name, score) as it arrives",
    )
    ap.add_argument(
        "--log-dir", type=Path, default=None, help="Keep each node's output in this folder"
    )
    return ap.parse_args(argv)


def first_results(monitor: Monitor, limit: int) -> list[ResultRecord]:
    """The monitor's results, one per frame (robot and sequence), the first ``limit`` of each robot
    (in a fleet one robot's camera may start seconds after another's: each one counts its own)."""
    seen: set[tuple[str, int]] = set()
    per_robot: dict[str, int] = {}
    out = []
    for r in list(monitor.results):
        if (r.robot, r.sequence) not in seen and per_robot.get(r.robot, 0) < limit:
            seen.add((r.robot, r.sequence))
            per_robot[r.robot] = per_robot.get(r.robot, 0) + 1
            out.append(r)
    return out


def _reported_since(monitor: Monitor, t_mono: float) -> bool:
    """Whether the server's LinkStats and every node's /diagnostics came again after ``t_mono``."""
    if not monitor.link_stats or monitor.link_stats[-1][0] < t_mono:
        return False
    return all(hist and hist[-1][0] >= t_mono for hist in list(monitor.diag_history.values()))


def summary(records: list[ResultRecord], monitor: Monitor, args: argparse.Namespace) -> dict:
    """Summary of the run; figures over all results (one window)."""
    stats = LinkStatsAccumulator()
    for r in records:
        stats.add(
            FrameRecord(
                r.payload_bytes, 0, r.latency_ms, r.edge_ms, r.transfer_ms, r.server_ms, r.correct
            )
        )
    duration = records[-1].arrival_mono - records[0].arrival_mono if len(records) > 1 else 0.0
    snap = stats.snapshot(time.monotonic())
    n = snap["frames"]
    payload_total = snap["payload_bytes_mean"] * n if n else 0.0
    server = monitor.link_stats[-1][1] if monitor.link_stats else None
    queue = [r.server_wait_ms for r in records]
    compute = [r.server_ms - r.server_wait_ms for r in records]
    return {
        "codec": args.codec or DEFAULT_CODEC,
        "quality": args.quality or "(codec default)",
        "profile": args.profile,
        "frames": n,
        "accuracy": snap["accuracy"],
        "labelled_frames": snap["labelled_frames"],
        "payload_bytes_mean": snap["payload_bytes_mean"],
        "payload_bytes_p50": snap["payload_bytes_p50"],
        "payload_bytes_p95": snap["payload_bytes_p95"],
        "kbit_per_s": payload_total * 8 / 1e3 / duration if duration > 0 else math.nan,
        "frames_per_s": (n - 1) / duration if duration > 0 else math.nan,
        "latency_p50_ms": snap["latency_p50_ms"],
        "latency_p95_ms": snap["latency_p95_ms"],
        "edge_p50_ms": snap["edge_p50_ms"],
        "edge_p95_ms": snap["edge_p95_ms"],
        "transfer_p50_ms": snap["transfer_p50_ms"],
        "transfer_p95_ms": snap["transfer_p95_ms"],
        "server_p50_ms": snap["server_p50_ms"],
        "server_p95_ms": snap["server_p95_ms"],
        "server_queue_p50_ms": percentile(queue, 50),
        "server_queue_p95_ms": percentile(queue, 95),
        "server_compute_p50_ms": percentile(compute, 50),
        "server_compute_p95_ms": percentile(compute, 95),
        "message_bytes_mean": float(server.message_bytes_mean) if server else math.nan,
        "server_drops": int(server.drops) if server else 0,
        **frame_counts(monitor),
    }


# : (summary key, node, diagnostics key): where the camera's frames went, from the nodes' last
# /diagnostics.
COUNTS = (
    ("camera_frames_sent", "hecsb_camera_source", "frames_sent"),
    ("edge_images_in", "hecsb_edge", "images_in"),
    ("edge_skipped", "hecsb_edge", "skipped"),
    ("edge_frames_lost", "hecsb_edge", "frames_lost"),
    ("edge_latents_sent", "hecsb_edge", "latents_sent"),
    ("server_received", "hecsb_server", "received"),
    ("server_skipped", "hecsb_server", "skipped"),
    ("server_results", "hecsb_server", "results"),
)


def frame_counts(monitor: Monitor) -> dict[str, int]:
    """The counters of :data:`COUNTS` summed over the fleet's nodes of each kind (-1 where none
    reported)."""
    out = {}
    for key, node, diag in COUNTS:
        values = [
            v
            for name, d in monitor.diagnostics.items()
            if name.rsplit("/", 1)[-1].startswith(node)
            for v in [d.get(diag)]
            if v is not None
        ]
        out[key] = int(sum(float(v) for v in values)) if values else -1
    out["skipped"] = sum(v for v in (out["edge_skipped"], out["server_skipped"]) if v >= 0)
    return out


def format_summary(s: dict) -> str:
    def f(v: float, nd: int = 1) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"

    acc = "n/a (no ground truth)" if s["labelled_frames"] == 0 else f"{100 * s['accuracy']:.2f}%"
    return "\n".join(
        [
            f"hecsb_ros demo summary — codec {s['codec']} (quality {s['quality']}), link "
            f"{s['profile']}",
            f"  frames classified   {s['frames']}   accuracy {acc} on {s['labelled_frames']} "
            "labelled "
            "frames",
            f"  payload per frame   mean {f(s['payload_bytes_mean'])} B, p50 "
            f"{f(s['payload_bytes_p50'])} B, "
            f"p95 {f(s['payload_bytes_p95'])} B (serialized message {f(s['message_bytes_mean'])} "
            "B)",
            f"  bandwidth           {f(s['kbit_per_s'], 2)} kbit/s at {f(s['frames_per_s'], 2)} "
            "frames/s",
            "  latency p50 / p95   edge {} / {} ms | link {} / {} ms | server queue {} / {} ms | "
            "server compute {} / {} ms"
            " | capture->result {} / {} ms".format(
                f(s['edge_p50_ms'], 2),
                f(s['edge_p95_ms'], 2),
                f(s['transfer_p50_ms'], 2),
                f(s['transfer_p95_ms'], 2),
                f(s['server_queue_p50_ms'], 2),
                f(s['server_queue_p95_ms'], 2),
                f(s['server_compute_p50_ms'], 2),
                f(s['server_compute_p95_ms'], 2),
                f(s['latency_p50_ms'], 2),
                f(s['latency_p95_ms'], 2),
            ),
            f"  skipped for newer   {s['skipped']} (edge {s['edge_skipped']}, server "
            f"{s['server_skipped']})",
            f"  frames (so far)     camera sent {s['camera_frames_sent']}, edge got "
            f"{s['edge_images_in']} (lost "
            f"{s['edge_frames_lost']}), latents sent {s['edge_latents_sent']}, server got "
            f"{s['server_received']}, "
            f"results {s['server_results']}",
            f"  drops at the server {s['server_drops']}",
        ]
    )


def _progress(monitor: Monitor, frames: int, total: int, start: float, tty: bool) -> None:
    records = first_results(monitor, frames)
    labelled = [r.correct for r in records if r.correct is not None]
    acc = f"{100 * sum(labelled) / len(labelled):.1f}%" if labelled else "-"
    lat = sorted(r.latency_ms for r in records)
    p50 = f"{lat[len(lat) // 2]:.1f} ms" if lat else "-"
    line = (
        f"[{time.monotonic() - start:6.1f} s] {len(records):4d}/{total} frames  accuracy "
        f"{acc}  "
        f"latency p50 {p50}"
    )
    print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)


def _show_results(monitor: Monitor, frames: int, shown: int) -> int:
    """Print the results after the first ``shown``; returns how many are printed now."""
    records = first_results(monitor, frames)
    for r in records[shown:]:
        who = f"{r.robot} " if r.robot else ""
        print(
            f"{who}frame {r.sequence:4d}: {r.label} ({r.score:.2f}), {r.payload_bytes} B, "
            f"capture->result {r.latency_ms:.0f} ms",
            flush=True,
        )
    return len(records)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    launch_values = {
        name: str(getattr(args, name)) for name in LAUNCH_ARGUMENTS if name != "params_file"
    }
    launch_values["frames"] = "0"  # the source loops; the demo stops after --frames results
    camera = next(
        s for s in split_inference_nodes(**launch_values) if s.role == "camera_source"
    ).parameters
    robots = tuple(robot_namespaces(args.robots))  # a fleet: every robot's results
    tmp = tempfile.TemporaryDirectory(prefix="hecsb_demo_")
    # this process's monitor, as the nodes
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

    import rclpy

    context = rclpy.Context()
    rclpy.init(
        context=context, **({} if args.domain_id is None else {"domain_id": args.domain_id})
    )
    monitor = Monitor("hecsb_demo_monitor", context=context, robots=robots)
    # Lifecycle (default): the runner activates server and edge, waits until this monitor's result
    # subscription is matched, then starts the camera. Plain nodes: the camera waits for the
    # topics.
    extra = (
        {"camera_source": {"wait_for_topics": camera["wait_for_topics"] + ",classification"}}
        if "wait_for_topics" in camera
        else {}
    )
    pipeline = Pipeline(
        args.domain_id,
        args.log_dir or Path(tmp.name),
        params=extra,
        params_files=(args.params_file,) if args.params_file else (),
        monitor=monitor,
        **launch_values,
    )
    code = 0
    try:
        pipeline.start()
        start = time.monotonic()
        tty = sys.stderr.isatty()
        last_print, shown = 0.0, 0
        total = args.frames * max(1, len(robots))
        while len(first_results(monitor, args.frames)) < total:
            time.sleep(0.1)
            now = time.monotonic()
            pipeline.check()
            done = len(first_results(monitor, args.frames))
            if now - start > args.timeout:
                raise TimeoutError(f"only {done} of {total} results after {args.timeout:.0f} s")
            last = monitor.results[-1].arrival_mono if monitor.results else None
            if last and now - last > args.idle_timeout:
                raise TimeoutError(f"no result for {args.idle_timeout:.0f} s after {done} frames")
            if args.show_results:
                shown = _show_results(monitor, args.frames, shown)
            elif now - last_print >= (0.2 if tty else 5.0):
                last_print = now
                _progress(monitor, args.frames, total, start, tty)
        if args.show_results:
            _show_results(monitor, args.frames, shown)
        elif tty:
            print(file=sys.stderr)
        # one more LinkStats and status from every node after the last result (at most 2.5 s)
        done_at = time.monotonic()
        monitor.spin_until(lambda: _reported_since(monitor, done_at), 2.5)
        result = summary(first_results(monitor, args.frames), monitor, args)
        print(format_summary(result), flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
    except (RuntimeError, TimeoutError) as exc:
        print(f"\nhecsb_demo failed: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        pipeline.stop()
        monitor.destroy()
        rclpy.try_shutdown(context=context)
        tmp.cleanup()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
