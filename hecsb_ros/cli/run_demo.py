"""hecsb-demo: run the split-inference node set as processes over DDS, with a live progress line.

For machines without ``ros2 launch``; the nodes come from the same description as the launch file
(:func:`hecsb_ros.graph.split_inference_nodes`). Ends with a summary: frames, accuracy, payload bytes
per frame, kbit/s and latency per stage.

    python -m hecsb_ros.cli.run_demo --codec png --profile 4g --frames 200
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from hecsb_ros.core.stats import FrameRecord, LinkStatsAccumulator
from hecsb_ros.graph import LAUNCH_ARGUMENTS, NodeSpec, split_inference_nodes
from hecsb_ros.params import DEFAULT_CODEC


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="hecsb-demo", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name, (default, help_text) in LAUNCH_ARGUMENTS.items():
        if name == "frames":
            continue
        ap.add_argument(f"--{name.replace('_', '-')}", default=default, help=help_text)
    ap.add_argument("--frames", type=int, default=200, help="Frames to classify, then stop")
    ap.add_argument("--timeout", type=float, default=600.0, help="Give up after this many seconds")
    ap.add_argument("--idle-timeout", type=float, default=20.0,
                    help="Stop when no result arrived for this long after the first one")
    ap.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for all processes")
    ap.add_argument("--json", type=Path, default=None, help="Also write the summary as JSON here")
    ap.add_argument("--log-dir", type=Path, default=None, help="Keep each node's output in this folder")
    return ap.parse_args(argv)


def node_command(spec: NodeSpec, params_files: list[str]) -> list[str]:
    """``python -m module --ros-args ...`` for one node."""
    cmd = [sys.executable, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    for f in params_files:
        cmd += ["--params-file", f]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


class Monitor:
    """Subscribes to results and statistics; keeps what the summary needs."""

    def __init__(self, limit: int) -> None:
        import rclpy
        from rclpy.node import Node

        from hecsb_ros.msg import ClassificationResult, LinkStats
        from hecsb_ros.nodes.common import reliable_qos

        self._rclpy = rclpy
        self.limit = limit
        self.node = Node("hecsb_demo_monitor")
        self.stats = LinkStatsAccumulator()
        self.seen: set[int] = set()
        self.first = self.last = None
        self.server_stats = None
        self.edge_stats = None
        self.node.create_subscription(ClassificationResult, "classification", self._on_result, reliable_qos(100))
        self.node.create_subscription(LinkStats, "link_stats", lambda m: setattr(self, "server_stats", m),
                                      reliable_qos(10))
        self.node.create_subscription(LinkStats, "edge_stats", lambda m: setattr(self, "edge_stats", m),
                                      reliable_qos(10))

    def _on_result(self, msg) -> None:
        from rclpy.time import Time

        if msg.sequence in self.seen or len(self.seen) >= self.limit:
            return
        self.seen.add(msg.sequence)
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        latency = (self.node.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6
        correct = None if msg.ground_truth < 0 else bool(msg.ground_truth == msg.class_id)
        self.stats.add(FrameRecord(msg.payload_bytes, 0, latency, msg.edge_total_ms, msg.transfer_ms,
                                   msg.server_total_ms, correct))

    def spin_once(self, timeout: float) -> None:
        self._rclpy.spin_once(self.node, timeout_sec=timeout)


def summary(monitor: Monitor, args: argparse.Namespace) -> dict:
    """Summary of the run; figures over all results (one window)."""
    duration = (monitor.last - monitor.first) if monitor.first and monitor.last else 0.0
    snap = monitor.stats.snapshot(time.monotonic())
    n = snap["frames"]
    payload_total = snap["payload_bytes_mean"] * n if n else 0.0
    server = monitor.server_stats
    out = {
        "codec": args.codec or DEFAULT_CODEC, "quality": args.quality or "(codec default)", "profile": args.profile,
        "frames": n, "accuracy": snap["accuracy"], "labelled_frames": snap["labelled_frames"],
        "payload_bytes_mean": snap["payload_bytes_mean"], "payload_bytes_p50": snap["payload_bytes_p50"],
        "payload_bytes_p95": snap["payload_bytes_p95"],
        "kbit_per_s": payload_total * 8 / 1e3 / duration if duration > 0 else math.nan,
        "frames_per_s": (n - 1) / duration if duration > 0 else math.nan,
        "latency_p50_ms": snap["latency_p50_ms"], "latency_p95_ms": snap["latency_p95_ms"],
        "edge_p50_ms": snap["edge_p50_ms"], "edge_p95_ms": snap["edge_p95_ms"],
        "transfer_p50_ms": snap["transfer_p50_ms"], "transfer_p95_ms": snap["transfer_p95_ms"],
        "server_p50_ms": snap["server_p50_ms"], "server_p95_ms": snap["server_p95_ms"],
        "message_bytes_mean": float(server.message_bytes_mean) if server else math.nan,
        "server_drops": int(server.drops) if server else 0,
    }
    return out


def format_summary(s: dict) -> str:
    def f(v: float, nd: int = 1) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"

    acc = "n/a (no ground truth)" if s["labelled_frames"] == 0 else f"{100 * s['accuracy']:.2f}%"
    return "\n".join([
        f"hecsb_ros demo summary — codec {s['codec']} (quality {s['quality']}), link {s['profile']}",
        f"  frames classified   {s['frames']}   accuracy {acc} on {s['labelled_frames']} labelled frames",
        f"  payload per frame   mean {f(s['payload_bytes_mean'])} B, p50 {f(s['payload_bytes_p50'])} B, "
        f"p95 {f(s['payload_bytes_p95'])} B (serialized message {f(s['message_bytes_mean'])} B)",
        f"  bandwidth           {f(s['kbit_per_s'], 2)} kbit/s at {f(s['frames_per_s'], 2)} frames/s",
        "  latency p50 / p95   edge {} / {} ms | transfer {} / {} ms | server {} / {} ms | "
        "capture->result {} / {} ms".format(
            f(s['edge_p50_ms'], 2), f(s['edge_p95_ms'], 2), f(s['transfer_p50_ms'], 2), f(s['transfer_p95_ms'], 2),
            f(s['server_p50_ms'], 2), f(s['server_p95_ms'], 2), f(s['latency_p50_ms'], 2), f(s['latency_p95_ms'], 2)),
        f"  drops at the server {s['server_drops']}",
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if args.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(args.domain_id)
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID") if k in env})
    launch_values = {name: str(getattr(args, name)) for name in LAUNCH_ARGUMENTS}
    launch_values["frames"] = "0"  # the source loops; the demo stops after --frames results
    specs = split_inference_nodes(**launch_values)
    for spec in specs:  # ... and once this process listens to the classifications too
        if spec.name == "camera_source":
            spec.parameters["wait_for_topics"] += ",classification"

    tmp = tempfile.TemporaryDirectory(prefix="hecsb_demo_")
    log_dir = args.log_dir or Path(tmp.name)
    log_dir.mkdir(parents=True, exist_ok=True)
    generated = Path(tmp.name) / "params.yaml"
    generated.write_text(yaml.safe_dump({s.name: {"ros__parameters": s.parameters} for s in specs}))
    user_files = [str(Path(args.params_file).resolve())] if args.params_file else []

    import rclpy

    rclpy.init()
    monitor = Monitor(args.frames)
    procs: dict[str, tuple[subprocess.Popen, Path]] = {}
    code = 0
    try:
        for spec in specs:
            log = log_dir / f"{spec.name}.log"
            procs[spec.name] = (subprocess.Popen(node_command(spec, user_files + [str(generated)]), env=env,
                                                 stdout=log.open("w"), stderr=subprocess.STDOUT), log)
        start = time.monotonic()
        tty = sys.stderr.isatty()
        last_print = 0.0
        while len(monitor.seen) < args.frames:
            monitor.spin_once(0.1)
            now = time.monotonic()
            for name, (proc, log) in procs.items():
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"node {name} exited with code {proc.returncode}:\n{tail}")
            if now - start > args.timeout:
                raise TimeoutError(f"only {len(monitor.seen)} of {args.frames} results after {args.timeout:.0f} s")
            if monitor.last and now - monitor.last > args.idle_timeout:
                raise TimeoutError(f"no result for {args.idle_timeout:.0f} s after {len(monitor.seen)} frames")
            if now - last_print >= (0.2 if tty else 5.0):
                last_print = now
                s = monitor.stats
                acc = f"{100 * s.accuracy:.1f}%" if s.labelled else "-"
                lat = sorted(s.all_latencies)
                p50 = f"{lat[len(lat) // 2]:.1f} ms" if lat else "-"
                line = (f"[{now - start:6.1f} s] {len(monitor.seen):4d}/{args.frames} frames  accuracy {acc}  "
                        f"latency p50 {p50}")
                print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
        if tty:
            print(file=sys.stderr)
        deadline = time.monotonic() + 2.5  # let the nodes publish one more LinkStats
        while time.monotonic() < deadline:
            monitor.spin_once(0.1)
        result = summary(monitor, args)
        print(format_summary(result), flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
    except (RuntimeError, TimeoutError) as exc:
        print(f"\nhecsb-demo failed: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, _ in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        monitor.node.destroy_node()
        rclpy.try_shutdown()
        tmp.cleanup()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
