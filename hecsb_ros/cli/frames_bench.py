"""Camera-sized frames into a running edge + server: what arrives and what the edge costs per
frame.

    python -m hecsb_ros.cli.frames_bench                          # writes benchmarks/frames/
    python -m hecsb_ros.cli.frames_bench --sizes 640x480 --duration 10 --out-dir runs/frames

A camera driver of one's own, in its own process, publishes real photos (scikit-learn's two sample
photos, resized) as ``sensor_msgs/Image`` ``bgr8`` on ``image_raw`` at ``--rate`` Hz for
``--duration`` s, best effort, keep last 2 (the sensor-data QoS of camera drivers), into an edge
and a server started through the process runner (the demo's nodes; the default codec unless
``--codec``; no link emulator). Each cell is one size with or without the Fast DDS profile
(``config/fastdds_profile.xml``) in every process, and with the profile plus glibc's malloc
thresholds in the edge's environment (``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``).

Reported per cell: frames published; received by the edge (its ``images_in`` counter: frames its
callback got, after any loss in transport and any overwritten in its depth-1 queue while it was
busy); classified (results that came back for these frames); the edge's own time per frame from
each result's ``edge_total_ms`` (message -> array, colour conversion, resize, encode; the callback
from its start to publishing the latent); the edge process's CPU time per received frame (all of
it: rclpy taking the message, the callback, the rest) and its CPU load in % of one core. The
publisher's process waits until it has matched the edge's subscription (and 2 s more, for the edge
to match it) before it counts; discovery is never counted as loss.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hecsb_ros.cli.benchutil import (
    fmt,
    local_domain,
    machine,
    markdown_table,
    monitored_pipeline,
    write_csv,
)
from hecsb_ros.core.bench.timing import cpu_seconds, percentile
from hecsb_ros.graph import EDGE_ENV, FASTDDS_PROFILE_VAR, fastdds_profile

# : glibc: serve buffers up to 32 MiB from the heap and keep freed heap (the edge's default since
# measured here)
MALLOC_ENV = EDGE_ENV
#: (label, profile in every process, malloc thresholds in the edge)
CELLS = (
    ("no profile", False, False),
    ("profile", True, False),
    ("profile + edge malloc", True, True),
)
# : the settings the project ships (launch file, runner): the profile everywhere, malloc thresholds
# in the edge
SHIPPED = "profile + edge malloc"
FIELDS = (
    "size",
    "setting",
    "rate_hz",
    "duration_s",
    "published",
    "received_by_edge",
    "classified",
    "lost_before_edge",
    "received_pct",
    "classified_pct",
    "edge_ms_p50",
    "edge_ms_p95",
    "edge_ms_mean",
    "edge_cpu_ms_per_frame",
    "edge_cpu_pct",
    "edge_rss_mb",
    "latency_p50_ms",
    "latency_p95_ms",
    "publish_ms_p50",
    "publisher_late",
    "load_before",
    "load_after",
)


def _photos(width: int, height: int) -> list[np.ndarray]:
    """scikit-learn's two sample photos as bgr8 frames of ``width`` x ``height``."""
    import cv2
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        interp = cv2.INTER_AREA if width <= img.shape[1] else cv2.INTER_CUBIC
        out.append(
            cv2.cvtColor(cv2.resize(img, (width, height), interpolation=interp), cv2.COLOR_RGB2BGR)
        )
    return out


def publish(
    size: str, rate: float, duration: float, out: Path, match_timeout: float = 60.0
) -> int:
    """The camera driver (run in its own process): publish ``rate`` x ``duration`` frames, write a
    JSON summary."""
    import rclpy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from hecsb_ros.nodes.qos import image_qos
    from hecsb_ros.nodes.conversions import array_to_image_msg, ns_to_time

    width, height = (int(v) for v in size.split("x"))
    rclpy.init()
    node = rclpy.create_node("frames_bench_camera")
    pub = node.create_publisher(Image, "image_raw", image_qos(2))
    msgs = [
        array_to_image_msg(frame, "bgr8", Header(frame_id="camera"))
        for frame in _photos(width, height)
    ]
    end = time.monotonic() + match_timeout
    while pub.get_subscription_count() < 1 and time.monotonic() < end:
        time.sleep(0.02)
    matched = pub.get_subscription_count() >= 1
    time.sleep(2.0)  # the edge's side of discovery
    n = int(round(rate * duration))
    stamps, publish_ms, late = [], [], 0
    t0 = time.monotonic()
    for i in range(n):
        wait = t0 + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -1.0 / rate:
            late += 1
        msg = msgs[i % len(msgs)]
        now = time.time_ns()
        msg.header.stamp = ns_to_time(now)
        t = time.perf_counter_ns()
        pub.publish(msg)
        publish_ms.append((time.perf_counter_ns() - t) / 1e6)
        stamps.append(now)
    out.write_text(
        json.dumps(
            {
                "published": n,
                "matched": matched,
                "first_ns": stamps[0],
                "last_ns": stamps[-1],
                "wall_s": time.monotonic() - t0,
                "late": late,
                "publish_ms_p50": float(np.median(publish_ms)),
                "bytes": len(msgs[0].data),
            }
        )
    )
    time.sleep(0.5)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def run_cell(
    size: str,
    label: str,
    profile: bool,
    malloc: bool,
    args: argparse.Namespace,
    domain_id: int,
    log_dir: Path,
) -> dict:
    """One cell: edge + server through the runner, the publisher as a separate process."""
    env = dict(os.environ, **{FASTDDS_PROFILE_VAR: str(fastdds_profile()) if profile else ""})
    for key in MALLOC_ENV:
        env.pop(key, None)
    graph = {"link": "false", **({"codec": args.codec} if args.codec else {})}
    summary_file = log_dir / f"publisher_{size}_{int(profile)}{int(malloc)}.json"
    with monitored_pipeline(
        domain_id,
        log_dir,
        "frames_bench_monitor",
        env=env,
        params={"edge": {"stats_period_s": 0.5}, "server": {"stats_period_s": 0.5}},
        node_env={"edge": dict(MALLOC_ENV) if malloc else dict.fromkeys(MALLOC_ENV)},
        **graph,
    ) as (pipe, monitor):
        pipe.start("edge", "server")
        if not monitor.spin_until(
            lambda: {"hecsb_edge", "hecsb_server"} <= set(monitor.diagnostics), 180.0
        ):
            pipe.check()
            raise TimeoutError("edge and server did not report within 180 s")
        load_before = os.getloadavg()[0]
        edge_pid = pipe.pid("edge")
        cpu0 = cpu_seconds(edge_pid)
        t_start = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "hecsb_ros.cli.frames_bench",
                "--publish",
                size,
                "--rate",
                str(args.rate),
                "--duration",
                str(args.duration),
                "--summary",
                str(summary_file),
            ],
            env=pipe.env,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=args.duration + 180,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"publisher failed: {proc.stderr[-2000:]}")
        pub = json.loads(summary_file.read_text())
        monitor.spin(3.0)  # the last results and one more edge report
        cpu1 = cpu_seconds(edge_pid)
        edge_rss = pipe.rss()["edge"]
        t_end = time.monotonic()
        pipe.check()
        received, _, _, _ = monitor.diag_delta("hecsb_edge", "images_in", t_start - 1.0, t_end)
        records = {
            r.sequence: r
            for r in monitor.results
            if pub["first_ns"] <= r.capture_ns <= pub["last_ns"]
        }
        edge_ms = [r.edge_ms for r in records.values()]
        latency = [r.latency_ms for r in records.values()]
        received = 0 if math.isnan(received) else int(received)
        return {
            "size": size,
            "setting": label,
            "rate_hz": args.rate,
            "duration_s": args.duration,
            "published": pub["published"],
            "received_by_edge": received,
            "classified": len(records),
            "lost_before_edge": pub["published"] - received,
            "received_pct": 100.0 * received / pub["published"],
            "classified_pct": 100.0 * len(records) / pub["published"],
            "edge_ms_p50": percentile(edge_ms, 50),
            "edge_ms_p95": percentile(edge_ms, 95),
            "edge_ms_mean": float(np.mean(edge_ms)) if edge_ms else math.nan,
            "edge_cpu_ms_per_frame": 1e3 * (cpu1 - cpu0) / received if received else math.nan,
            "edge_cpu_pct": 100.0 * (cpu1 - cpu0) / pub["wall_s"],
            "latency_p50_ms": percentile(latency, 50),
            "latency_p95_ms": percentile(latency, 95),
            "publish_ms_p50": pub["publish_ms_p50"],
            "publisher_late": pub["late"],
            "edge_rss_mb": edge_rss,
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
        }


def write_report(
    rows: list[dict], out_dir: Path, command: str, started: float, seconds: float
) -> None:
    """``results.csv`` and ``README.md`` (the table, the shipped settings' figures) in
    ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, FIELDS, out_dir / "results.csv")
    cols = [
        ("size", "size"),
        ("setting", "setting"),
        ("published", "published"),
        ("received_by_edge", "received by the edge"),
        ("classified", "classified"),
        ("edge_ms_p50", "edge ms/frame p50"),
        ("edge_ms_p95", "p95"),
        ("edge_cpu_ms_per_frame", "edge CPU ms/frame"),
        ("edge_cpu_pct", "edge CPU % of a core while streaming"),
        ("edge_rss_mb", "edge RSS MiB"),
        ("latency_p50_ms", "capture->result p50 ms"),
    ]
    lines = [
        "# Camera frames into the edge: published, received, classified",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}"
        f" (shared; load average {rows[0]['load_before']:.1f} at the start, "
        f"{rows[-1]['load_after']:.1f} at the end)  ",
        f"Run: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, {seconds / 60:.1f} min "
        " ",
        f"Frames: scikit-learn's two sample photos resized, bgr8, {rows[0]['rate_hz']:g} Hz for "
        f"{rows[0]['duration_s']:g} s from a separate publisher process (best effort, keep last "
        "2); edge and "
        "server through the process runner, default codec, no link emulator.",
        "",
        *markdown_table(rows, cols),
        "",
    ]
    for row in rows:
        if row["setting"] != SHIPPED:
            continue
        period = 1e3 / float(row["rate_hz"])
        lines.append(
            f"- {row['size']} with the shipped settings (profile + edge malloc): "
            f"{row['received_by_edge']} of {row['published']} frames reached the edge "
            f"({int(row['published']) - int(row['received_by_edge'])} lost or "
            "overwritten), "
            f"{row['classified']} classified; the edge's time per frame is "
            f"{fmt(row['edge_ms_p50'])} ms "
            f"(p95 {fmt(row['edge_ms_p95'])} ms) and its CPU "
            f"{fmt(row['edge_cpu_ms_per_frame'])} ms "
            f"per frame, {100 * float(row['edge_cpu_ms_per_frame']) / period:.0f}% of "
            "the "
            f"{period:.1f} ms frame period."
        )
    lines += [
        "",
        "Edge ms/frame: the edge's own `edge_total_ms` of each classified frame "
        "(message -> array, "
        "colour conversion, resize, encode). Edge CPU: user + system time of the edge "
        "process over the run "
        "(rclpy receiving the message included) per frame it received, and over the "
        "streaming time. Received by the edge: frames its "
        "callback got (loss in transport, and frames overwritten in its depth-1 queue while "
        "it was busy, "
        "are the difference to published).",
        "",
    ]
    (out_dir / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hecsb bench frames",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], help="frame sizes WxH")
    ap.add_argument("--rate", type=float, default=30.0, help="frames per second")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of publishing per cell")
    ap.add_argument("--codec", default="", help="codec of edge and server; '' = the default")
    ap.add_argument(
        "--cells", nargs="+", default=[c[0] for c in CELLS], choices=[c[0] for c in CELLS]
    )
    ap.add_argument(
        "--domain-id", type=int, default=None, help="first ROS_DOMAIN_ID (one per cell)"
    )
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/frames"))
    ap.add_argument("--publish", metavar="WxH", help=argparse.SUPPRESS)
    ap.add_argument("--summary", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.publish:
        return publish(args.publish, args.rate, args.duration, args.summary)
    started, rows = time.time(), []
    domain = local_domain(args.domain_id)
    cells = [c for c in CELLS if c[0] in args.cells]
    log_root = Path(tempfile.mkdtemp(prefix="hecsb_frames_"))
    for size in args.sizes:
        for label, profile, malloc in cells:
            print(f"[frames_bench] {size} {label} (domain {domain})", file=sys.stderr, flush=True)
            row = run_cell(
                size, label, profile, malloc, args, domain, log_root / f"{size}_{len(rows)}"
            )
            rows.append(row)
            domain += 1
            print(
                "  "
                + ", ".join(
                    f"{k} {fmt(row[k])}"
                    for k in (
                        "published",
                        "received_by_edge",
                        "classified",
                        "edge_ms_p50",
                        "edge_cpu_ms_per_frame",
                    )
                ),
                file=sys.stderr,
                flush=True,
            )
    command = "python -m hecsb_ros.cli.frames_bench " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    write_report(rows, args.out_dir, command.strip(), started, time.time() - started)
    print((args.out_dir / "README.md").read_text())
    print(f"logs: {log_root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
