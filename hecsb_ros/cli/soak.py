"""Run the split-inference pipeline for a long time and record memory, errors and latency.

Every node runs in its own process over DDS (as ``hecsb demo`` runs them). With ``--rate-hz auto``
a ramp first finds the highest camera rate the configuration sustains (results keep up with the
camera and latency stays low), then the soak runs at that rate. Writes ``<name>.md``,
``<name>.csv`` (one row per window) and ``<name>.png`` (latency and memory over time).

    python -m hecsb_ros.cli.soak --duration 1200 --rate-hz auto --codec png --out-dir
    benchmarks/reliability
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hecsb_ros.core.stats import SKIPPED
from hecsb_ros.reliability import scenarios
from hecsb_ros.monitor import Monitor, latency_stats
from hecsb_ros.runner import Pipeline

#: Server drop reasons that are errors (bad input or decode failures); sequence gaps and link
#: queueing are losses on a saturated link, reported apart.
LOSS_REASONS = ("sequence_gap", "link_loss", "queue_full")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="hecsb reliability soak",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--duration", type=float, default=1200.0, help="Soak length in seconds")
    ap.add_argument(
        "--rate-hz",
        default="auto",
        help="Camera rate, or 'auto' to find the highest sustained one",
    )
    ap.add_argument(
        "--ramp", default="10,20,40,80,120,160,240,320", help="Rates tried by --rate-hz auto"
    )
    ap.add_argument("--ramp-step-s", type=float, default=12.0, help="Seconds per ramp step")
    ap.add_argument(
        "--sustain-ratio",
        type=float,
        default=0.95,
        help="A rate is sustained when results/camera frames is at least this ...",
    )
    ap.add_argument(
        "--sustain-p95-ms", type=float, default=100.0, help="... and the latency p95 below this"
    )
    ap.add_argument("--codec", default="png", help="Codec of edge and server")
    ap.add_argument("--profile", default="4g", help="Link profile")
    ap.add_argument(
        "--checkpoint", default="", help="Classifier checkpoint; '' = the shipped teacher"
    )
    ap.add_argument("--window", type=float, default=30.0, help="Seconds per reported window")
    ap.add_argument(
        "--warmup", type=float, default=15.0, help="Seconds of running before the start figures"
    )
    ap.add_argument("--domain-id", type=int, default=213)
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/reliability"))
    ap.add_argument("--name", default="soak", help="Base name of the report files")
    return ap.parse_args(argv)


def _drops(stats_msg: Any) -> dict[str, int]:
    return (
        dict(zip(stats_msg.drop_reasons, (int(c) for c in stats_msg.drop_counts)))
        if stats_msg
        else {}
    )


def _errors(drops: dict[str, int]) -> int:
    return sum(v for k, v in drops.items() if k not in LOSS_REASONS and k != SKIPPED)


def find_rate(
    pipe: Pipeline, monitor: Monitor, args: argparse.Namespace
) -> tuple[float, list[dict]]:
    """Ramp the camera rate; return the highest sustained rate and the ramp figures."""
    cam = pipe.specs["camera_source"].name
    steps, best = [], None
    for rate in (float(r) for r in args.ramp.split(",")):
        monitor.set_parameter(cam, "rate_hz", rate)
        monitor.spin(2.0)  # settle
        t0 = time.monotonic()
        monitor.spin(args.ramp_step_s)
        # Camera frames between two of its diagnostics reports; results over the same span.
        sent, span, ta, tb = monitor.diag_delta(cam, "frames_sent", t0, time.monotonic())
        recs = [r for r in monitor.results if ta <= r.arrival_mono < tb] if span == span else []
        lat = latency_stats(recs)
        ratio = len(recs) / sent if sent > 0 else 0.0
        ok = ratio >= args.sustain_ratio and lat["p95_ms"] < args.sustain_p95_ms
        steps.append(
            {
                "rate_hz": rate,
                "camera_hz": sent / span,
                "results_hz": len(recs) / span,
                "ratio": ratio,
                "p50_ms": lat["p50_ms"],
                "p95_ms": lat["p95_ms"],
                "sustained": ok,
            }
        )
        print(
            f"[ramp] {rate:6.1f} Hz: camera {sent / span:6.1f}/s, results "
            f"{len(recs) / span:6.1f}/s, "
            f"p95 {lat['p95_ms']:.1f} ms -> {'ok' if ok else 'not sustained'}",
            flush=True,
        )
        if not ok:
            break
        best = rate
    if best is None:
        raise RuntimeError(f"no rate of {args.ramp} was sustained: {steps}")
    return best, steps


def log_problems(pipe: Pipeline) -> dict[str, int]:
    """Tracebacks and ERROR lines in each node's log."""
    out = {}
    for key in pipe.specs:
        text = pipe.log_tail(key, 10**8)
        out[key] = len(re.findall(r"Traceback|\[ERROR\]", text))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=args.domain_id)
    log_dir = Path(tempfile.mkdtemp(prefix="hecsb_soak_"))
    node_params: dict[str, dict[str, Any]] = {}
    if args.checkpoint:
        node_params = {
            "edge": {"checkpoint": args.checkpoint},
            "server": {"checkpoint": args.checkpoint},
        }
    first_rate = "10" if args.rate_hz == "auto" else args.rate_hz
    pipe = Pipeline(
        args.domain_id,
        log_dir,
        node_params,
        codec=args.codec,
        profile=args.profile,
        rate_hz=first_rate,
    )
    monitor = Monitor("hecsb_soak_monitor", context=ctx)
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "log_dir": str(log_dir),
        "command": "python -m hecsb_ros.cli.soak " + " ".join(sys.argv[1:]),
    }
    try:
        pipe.start()
        scenarios.wait_for_flow(monitor, pipe, results=20, timeout=180.0)
        if args.rate_hz == "auto":
            rate, ramp = find_rate(pipe, monitor, args)
            report["ramp"] = ramp
            monitor.set_parameter(pipe.specs["camera_source"].name, "rate_hz", rate)
        else:
            rate = float(args.rate_hz)
        report["rate_hz"] = rate
        monitor.spin(args.warmup)
        cam = pipe.specs["camera_source"].name
        rss0 = pipe.rss()
        sent0 = monitor.diag_int(cam, "frames_sent")
        server_drops0 = _drops(monitor.link_stats[-1][1] if monitor.link_stats else None)
        edge_drops0 = _drops(monitor.edge_stats[-1][1] if monitor.edge_stats else None)
        t0 = time.monotonic()
        n0 = len(monitor.results)
        print(
            f"[soak] {args.duration:.0f} s at {rate:.1f} Hz, RSS at start {json.dumps(rss0)}",
            flush=True,
        )
        while time.monotonic() - t0 < args.duration:
            w0 = time.monotonic()
            nw = len(monitor.results)
            monitor.spin(min(args.window, args.duration - (w0 - t0)))
            recs = monitor.results[nw:]
            lat = latency_stats(recs)
            rss = pipe.rss()
            sd = _drops(monitor.link_stats[-1][1] if monitor.link_stats else None)
            ed = _drops(monitor.edge_stats[-1][1] if monitor.edge_stats else None)
            alive = pipe.alive()
            row = {
                "t_s": round(time.monotonic() - t0, 1),
                "results": len(recs),
                "results_per_s": len(recs) / max(time.monotonic() - w0, 1e-9),
                "latency_p50_ms": lat["p50_ms"],
                "latency_p95_ms": lat["p95_ms"],
                "latency_p99_ms": lat["p99_ms"],
                "latency_max_ms": lat["max_ms"],
                **{f"rss_{k}_mb": round(v, 1) for k, v in rss.items()},
                "server_errors": _errors(sd) - _errors(server_drops0),
                "server_losses": sum(sd.get(r, 0) - server_drops0.get(r, 0) for r in LOSS_REASONS),
                "edge_errors": _errors(ed) - _errors(edge_drops0),
                "nodes_alive": sum(alive.values()),
            }
            rows.append(row)
            print(
                f"[soak] t={row['t_s']:7.1f} s results {row['results_per_s']:6.1f}/s p50 "
                f"{lat['p50_ms']:.1f} "
                f"p99 {lat['p99_ms']:.1f} ms RSS "
                f"{json.dumps({k: round(v) for k, v in rss.items()})} "
                f"errors {row['server_errors'] + row['edge_errors']}",
                flush=True,
            )
            if not all(alive.values()):
                report["died"] = [k for k, ok in alive.items() if not ok]
                break
        elapsed = time.monotonic() - t0
        monitor.spin(1.5)
        rss1 = pipe.rss()
        sent = monitor.diag_int(cam, "frames_sent") - sent0
        results = monitor.results[n0:]
        labelled = [r for r in results if r.correct is not None]
        report.update(
            {
                "duration_s": elapsed,
                "camera_frames": sent,
                "results": len(results),
                "results_per_s": len(results) / elapsed,
                "accuracy": sum(r.correct for r in labelled) / len(labelled)
                if labelled
                else math.nan,
                "latency": latency_stats(results),
                "rss_start_mb": rss0,
                "rss_end_mb": rss1,
                "rss_growth_pct": {k: 100.0 * (rss1[k] - rss0[k]) / rss0[k] for k in rss0},
                "errors": {
                    "server": rows[-1]["server_errors"] if rows else 0,
                    "edge": rows[-1]["edge_errors"] if rows else 0,
                    "node_exits": len(report.get("died", [])),
                    "log_tracebacks_or_errors": log_problems(pipe),
                },
                "losses": rows[-1]["server_losses"] if rows else 0,
                "restarts": dict(pipe.restarts),
            }
        )
    finally:
        pipe.stop()
        monitor.destroy()
        rclpy.try_shutdown(context=ctx)
    report["rows"] = rows
    return report


def write_reports(report: dict[str, Any], out_dir: Path, name: str) -> list[Path]:
    """``<name>.csv``, ``<name>.png``, ``<name>.md`` and ``<name>.json`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = report["rows"]
    paths = [
        out_dir / f"{name}.csv",
        out_dir / f"{name}.png",
        out_dir / f"{name}.md",
        out_dir / f"{name}.json",
    ]
    with paths[0].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["t_s"])
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
            )
    t = [r["t_s"] / 60 for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax1.plot(t, [r["latency_p50_ms"] for r in rows], label="p50")
    ax1.plot(t, [r["latency_p99_ms"] for r in rows], label="p99")
    ax1.set_ylabel("capture -> result (ms)")
    ax1.set_title(
        f"hecsb_ros soak: {report['args']['codec']}, {report['args']['profile']} link, "
        f"{report['rate_hz']:.0f} Hz camera, {report['args']['window']} s windows"
    )
    ax1.legend()
    ax1.grid(alpha=0.3)
    for key in report["rss_start_mb"]:
        ax2.plot(t, [r[f"rss_{key}_mb"] for r in rows], label=key)
    ax2.set_ylabel("RSS (MiB)")
    ax2.set_xlabel("time (min)")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    paths[2].write_text(markdown(report, name))
    paths[3].write_text(
        json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1, default=str)
    )
    return paths


def markdown(r: dict[str, Any], name: str) -> str:
    lat = r["latency"]
    unprocessed = r["camera_frames"] - r["results"] - r["losses"]
    lines = [
        f"# Soak run: {r['duration_s'] / 60:.1f} minutes at {r['rate_hz']:.0f} frames/s",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {platform.machine()}, {platform.python_version()}, recorded "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"Codec `{r['args']['codec']}`, link `{r['args']['profile']}`, every node its own process "
        "over Fast DDS "
        "(localhost). Latency is capture -> result at a monitor node on the same machine. The "
        "machine has 2 cores, "
        "shared during the run with other jobs (model training, experiments): latency tails and "
        "the frames the bounded "
        "queues dropped follow that load.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| camera frames / results | {r['camera_frames']} / {r['results']} "
        f"({100 * r['results'] / max(r['camera_frames'], 1):.1f}%, "
        f"{r['results_per_s']:.1f} results/s) |",
        f"| latency p50 / p95 / p99 / max | {lat['p50_ms']:.1f} / {lat['p95_ms']:.1f} / "
        f"{lat['p99_ms']:.1f} / {lat['max_ms']:.1f} ms |",
        "| errors (server bad input + decode, edge bad input, node exits) | "
        f"{r['errors']['server']}, {r['errors']['edge']}, {r['errors']['node_exits']} |",
        "| tracebacks or ERROR lines in node logs | "
        f"{sum(r['errors']['log_tracebacks_or_errors'].values())} |",
        f"| frames dropped by the bounded queues | {unprocessed} stale camera frames at the edge "
        "(keep-last 1), "
        f"{r['losses']} latents between edge and server (sequence gaps: keep-last queues, link "
        "queue) |",
        f"| accuracy on labelled results | {100 * r['accuracy']:.2f}% |",
        f"| node restarts | {sum(r['restarts'].values())} |",
        "",
        "| node | RSS start (MiB) | RSS end (MiB) | growth |",
        "| --- | --- | --- | --- |",
    ]
    for k in r["rss_start_mb"]:
        lines.append(
            f"| {k} | {r['rss_start_mb'][k]:.1f} | {r['rss_end_mb'][k]:.1f} | "
            f"{r['rss_growth_pct'][k]:+.2f}% |"
        )
    if "ramp" in r:
        lines += [
            "",
            "Rate ramp (each step {}s; sustained = results >= {} x camera frames and "
            "p95 < {} ms):".format(
                r["args"]["ramp_step_s"], r["args"]["sustain_ratio"], r["args"]["sustain_p95_ms"]
            ),
            "",
            "| camera rate set | camera frames/s | results/s | p50 ms | p95 ms | sustained |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for s in r["ramp"]:
            lines.append(
                f"| {s['rate_hz']:.0f} | {s['camera_hz']:.1f} | {s['results_hz']:.1f} | "
                f"{s['p50_ms']:.1f} | "
                f"{s['p95_ms']:.1f} | {'yes' if s['sustained'] else 'no'} |"
            )
    lines += [
        "",
        f"Per-window figures: [{name}.csv]({name}.csv). Latency and memory over time:",
        "",
        f"![latency and RSS over time]({name}.png)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    paths = write_reports(report, args.out_dir, args.name)
    print("\n".join(["[soak] wrote " + str(p) for p in paths]), flush=True)
    growth = max(report["rss_growth_pct"].values())
    errors = report["errors"]
    bad = errors["server"] + errors["edge"] + errors["node_exits"]
    print(f"[soak] max RSS growth {growth:+.2f}%, errors {bad}", flush=True)
    return 0 if growth < 5.0 and bad == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
