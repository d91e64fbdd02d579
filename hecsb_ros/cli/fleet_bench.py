"""A fleet on one server: N robots at 10 Hz each, micro-batching off and on.

    python -m hecsb_ros.cli.fleet_bench                               # writes benchmarks/fleet/
    python -m hecsb_ros.cli.fleet_bench --codec jpeg --teacher efficientnet_lite0 --out-dir
    benchmarks/fleet_camera python -m hecsb_ros.cli.fleet_bench --teacher efficientnet_lite0
    --replay 40 --threads 2 \
        --out-dir benchmarks/fleet_replay    # the server alone on the machine, robots played back
    python -m hecsb_ros.cli.fleet_bench --teacher efficientnet_lite0 --source folder --path
    runs/fleet_frames \
        --replay 40 --threads 2 --server-depth 1 --out-dir benchmarks/fleet_replay_fresh   # newest
        latent only

Each cell starts the fleet's node set through the process runner (``robots:=robot1,...,robotN``: a
camera source and an edge per robot in its namespace, one server for all, no link emulator), lets
it warm up until every robot has results, then counts for ``--duration`` s: results per second
(and the offered load, N x rate), capture -> result latency p50 / p95 over all robots, per-robot
fairness (fewest and most results of a robot), the mean batch the server's network ran, and the
server process's CPU load. Cells: N in ``--robots``, each with ``max_batch`` 1 (off) and
``--batch`` (on, ``max_wait_ms`` = ``--wait-ms``). Results go to ``results.csv``, ``README.md``
and ``fleet.png`` in ``--out-dir``. With ``--replay FRAMES`` the robots are latents recorded once
from the edge half and played back (:mod:`hecsb_ros.latent_player`): the server is then the only
node on the machine, as on a fleet's offboard computer, and the cells measure its capacity.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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

FIELDS = (
    "robots",
    "batching",
    "max_batch",
    "max_wait_ms",
    "rate_hz",
    "duration_s",
    "offered_per_s",
    "results_per_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "robot_min",
    "robot_max",
    "mean_batch",
    "server_ms_p50",
    "server_cpu_pct",
    "server_depth",
    "load_before",
    "load_after",
)


def run_cell(
    n: int,
    max_batch: int,
    args: argparse.Namespace,
    domain_id: int,
    log_dir: Path,
    recording: Any = None,
) -> dict:
    """One cell: N robots into one server with ``max_batch`` (1 = off); with a ``recording`` the
    robots are played back latents (:mod:`hecsb_ros.latent_player`) and only the server runs as a
    node."""
    robots = tuple(f"robot{i + 1}" for i in range(n))
    graph = {
        "link": "false",
        "robots": ",".join(robots),
        "rate_hz": str(args.rate),
        "source": args.source,
        **({"path": args.path} if args.path else {}),
        **({"codec": args.codec} if args.codec else {}),
        **({"teacher": args.teacher} if args.teacher else {}),
    }
    server = {
        "max_batch": max_batch,
        "max_wait_ms": float(args.wait_ms),
        "stats_period_s": 1.0,
        "threads": args.threads,
        "qos_depth": args.server_depth,
    }
    with monitored_pipeline(
        domain_id,
        log_dir,
        "fleet_bench_monitor",
        robots,
        **graph,
        params={"server": server, "edge": {"stats_period_s": 1.0}},
    ) as (pipe, monitor):
        player = None
        try:
            if recording is None:
                pipe.start(timeout=600.0)
            else:
                from hecsb_ros.latent_player import LatentPlayer

                pipe.start("server", timeout=600.0)
                player = LatentPlayer(recording, robots, args.rate, context=monitor.node.context)
                if not monitor.spin_until(player.subscribed, 60.0):
                    raise TimeoutError(
                        "the server did not subscribe to every robot's latent topic within 60 s"
                    )
                player.start()
            if not monitor.spin_until(
                lambda: {r.robot for r in monitor.results} >= set(robots), 300.0
            ):
                pipe.check()
                raise TimeoutError(
                    f"not every robot had a result within 300 s: {pipe.log_tail('server')}"
                )
            monitor.spin(args.warmup)
            pid = pipe.pid("server")
            load_before, cpu0, t0 = os.getloadavg()[0], cpu_seconds(pid), time.monotonic()
            monitor.spin(args.duration)
            t1, cpu1 = time.monotonic(), cpu_seconds(pid)
            pipe.check()
            window = [r for r in monitor.results if t0 <= r.arrival_mono < t1]
            per_robot = {r: 0 for r in robots}
            for rec in window:
                per_robot[rec.robot] = per_robot.get(rec.robot, 0) + 1
            latency = [r.latency_ms for r in window]
            return {
                "robots": n,
                "batching": "on" if max_batch > 1 else "off",
                "max_batch": max_batch,
                "max_wait_ms": float(args.wait_ms) if max_batch > 1 else 0.0,
                "rate_hz": args.rate,
                "duration_s": round(t1 - t0, 2),
                "offered_per_s": n * args.rate,
                "results_per_s": len(window) / (t1 - t0),
                "latency_p50_ms": percentile(latency, 50),
                "latency_p95_ms": percentile(latency, 95),
                "robot_min": min(per_robot.values()),
                "robot_max": max(per_robot.values()),
                "mean_batch": float(np.mean([r.server_batch for r in window]))
                if window
                else math.nan,
                "server_ms_p50": percentile([r.server_ms for r in window], 50),
                "server_cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0),
                "server_depth": args.server_depth,
                "load_before": load_before,
                "load_after": os.getloadavg()[0],
            }
        finally:
            if player is not None:
                player.destroy()


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for batching, style in (("off", "o-"), ("on", "s--")):
        sel = [r for r in rows if r["batching"] == batching]
        if not sel:
            continue
        ns = [r["robots"] for r in sel]
        ax1.plot(ns, [r["results_per_s"] for r in sel], style, label=f"batching {batching}")
        ax2.plot(ns, [r["latency_p95_ms"] for r in sel], style, label=f"p95, batching {batching}")
        ax2.plot(
            ns,
            [r["latency_p50_ms"] for r in sel],
            style,
            alpha=0.4,
            label=f"p50, batching {batching}",
        )
    offered = sorted({(r["robots"], r["offered_per_s"]) for r in rows})
    ax1.plot([o[0] for o in offered], [o[1] for o in offered], ":", color="grey", label="offered")
    ax1.set(xlabel="robots", ylabel="results / s", title="throughput")
    ax2.set(xlabel="robots", ylabel="capture -> result ms", title="latency", yscale="log")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    rows: list[dict],
    args: argparse.Namespace,
    out_dir: Path,
    command: str,
    started: float,
    seconds: float,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, FIELDS, out_dir / "results.csv")
    codec = args.codec or "default (hecsb)"
    what = f"codec {codec}, teacher {args.teacher or 'shipped Fashion-MNIST'}"
    plot(rows, out_dir / "fleet.png", f"{what}; {args.rate:g} Hz per robot; {platform.node()}")
    cols = [
        ("robots", "robots"),
        ("batching", "batching"),
        ("offered_per_s", "offered /s"),
        ("results_per_s", "results /s"),
        ("latency_p50_ms", "latency p50 ms"),
        ("latency_p95_ms", "p95 ms"),
        ("robot_min", "fewest per robot"),
        ("robot_max", "most per robot"),
        ("mean_batch", "mean batch"),
        ("server_ms_p50", "server ms p50"),
        ("server_cpu_pct", "server CPU %"),
    ]
    lines = [
        "# A fleet on one server: throughput, latency, fairness, micro-batching off and on",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}"
        f", shared by "
        + ("the server and the player" if args.replay else "every process of the fleet")
        + " (load average "
        f"{rows[0]['load_before']:.1f} at the start, {rows[-1]['load_after']:.1f} at the end)  ",
        f"Run: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, {seconds / 60:.1f} min "
        " ",
        f"Setting: {what}; "
        + (
            f"per robot {args.replay} latents recorded from the edge half on the source's frames "
            f"({args.source}), "
            f"played back at {args.rate:g} Hz (each robot's timer at a random phase; stamped when "
            "published, so "
            f"latency starts when a latent leaves its robot), only the server runs as a node"
            if args.replay
            else f"per robot a camera source ({args.source}) at {args.rate:g} Hz and an edge in "
            "its "
            "namespace"
        )
        + f", one server (threads {args.threads}, latent queue {args.server_depth} per robot); no "
        f"link emulator; batching on = max_batch {args.batch}, "
        f"max_wait_ms {args.wait_ms:g}; counted for {args.duration:g} s after every robot had "
        "results and "
        f"{args.warmup:g} s more.",
        "",
        *markdown_table(rows, cols),
        "",
    ]
    by = {(r["robots"], r["batching"]): r for r in rows}
    for n in sorted({r["robots"] for r in rows}):
        off, on = by.get((n, "off")), by.get((n, "on"))
        if off and on and off["results_per_s"] > 0:
            lines.append(
                f"- {n} robots: batching on / off = "
                f"{on['results_per_s'] / off['results_per_s']:.2f}x "
                f"results per second, p95 {fmt(on['latency_p95_ms'])} vs "
                f"{fmt(off['latency_p95_ms'])} ms."
            )
    lines += [
        "",
        "Results /s: results that reached the monitor in the counting window. Latency: "
        "capture stamp -> "
        "arrival at the monitor (one machine, one clock). Mean batch: frames per network "
        "call of the server "
        "(`server_batch` of each result). Server CPU: user + system time of the server "
        "process over the window, "
        "in % of one core.",
        "",
        "![fleet](fleet.png)",
        "",
    ]
    (out_dir / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hecsb bench fleet",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--robots", type=int, nargs="+", default=[1, 2, 4, 8], help="fleet sizes")
    ap.add_argument("--rate", type=float, default=10.0, help="frames per second per robot")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds counted per cell")
    ap.add_argument(
        "--warmup", type=float, default=3.0, help="seconds after every robot's first result"
    )
    ap.add_argument("--batch", type=int, default=8, help="max_batch when batching is on")
    ap.add_argument("--wait-ms", type=float, default=10.0, help="max_wait_ms when batching is on")
    ap.add_argument("--modes", nargs="+", default=["off", "on"], choices=["off", "on"])
    ap.add_argument("--codec", default="", help="codec of edges and server; '' = the default")
    ap.add_argument(
        "--teacher", default="", help="teacher (e.g. efficientnet_lite0); '' = the shipped one"
    )
    ap.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    ap.add_argument(
        "--server-depth",
        type=int,
        default=10,
        help="the server's qos_depth: latents queued per robot while it is busy (keep "
        "last; 1 = only "
        "the newest, a saturated server answers fresh frames and drops the stale "
        "ones)",
    )
    ap.add_argument("--source", default="dataset", help="camera source of every robot")
    ap.add_argument("--path", default="", help="image folder / video for --source folder / video")
    ap.add_argument(
        "--replay",
        type=int,
        default=0,
        metavar="FRAMES",
        help="robots are played-back latents: the edge half runs once here on FRAMES "
        "frames of the "
        "source, and every robot publishes them at --rate (only the server runs "
        "as a node, so the "
        "machine's CPU goes to the server, as in a fleet whose edges run on the "
        "robots); 0: every "
        "robot runs a camera source and an edge node",
    )
    ap.add_argument(
        "--domain-id", type=int, default=None, help="first ROS_DOMAIN_ID (one per cell)"
    )
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/fleet"))
    args = ap.parse_args(argv)
    started, rows = time.time(), []
    domain = local_domain(args.domain_id)
    log_root = Path(tempfile.mkdtemp(prefix="hecsb_fleet_"))
    recording = None
    if args.replay:
        from hecsb_ros.latent_player import record_latents

        recording = record_latents(args.codec, args.teacher, args.source, args.path, args.replay)
        sizes = [len(f.data) for f in recording.frames]
        print(
            f"[fleet_bench] recorded {len(sizes)} latents of {recording.codec} "
            f"r{recording.rate_level} "
            f"({recording.model_id}), mean {np.mean(sizes):.0f} B",
            file=sys.stderr,
            flush=True,
        )
    for n in args.robots:
        for mode in args.modes:
            max_batch = args.batch if mode == "on" else 1
            print(
                f"[fleet_bench] {n} robots, batching {mode} (domain {domain})",
                file=sys.stderr,
                flush=True,
            )
            row = run_cell(n, max_batch, args, domain, log_root / f"{n}_{mode}", recording)
            rows.append(row)
            domain += 1
            print(
                "  "
                + ", ".join(
                    f"{k} {fmt(row[k])}"
                    for k in (
                        "results_per_s",
                        "latency_p50_ms",
                        "latency_p95_ms",
                        "robot_min",
                        "robot_max",
                        "mean_batch",
                    )
                ),
                file=sys.stderr,
                flush=True,
            )
    command = "python -m hecsb_ros.cli.fleet_bench " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    write_report(rows, args, args.out_dir, command.strip(), started, time.time() - started)
    print((args.out_dir / "README.md").read_text())
    print(f"logs: {log_root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
