"""Measure recovery from faults and behaviour under overload; writes a report.

Every node runs in its own process over DDS. Scenarios (hecsb_ros/reliability/scenarios.py):
a link blackout, the server and the edge killed (SIGKILL) and restarted, latents from an unknown
encoder beside the real stream, and a camera at twice the edge's sustainable rate (the load-test
edge: png plus ``--extra-ms`` per frame). Each scenario is repeated ``--repeat`` times where that
makes sense. Writes ``<name>.md`` and ``<name>.json``.

    python -m hecsb_ros.cli.faults --repeat 3 --out-dir benchmarks/reliability
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hecsb_ros.reliability import scenarios
from hecsb_ros.monitor import Monitor
from hecsb_ros.runner import Pipeline

SLOW_CODEC_MODULE = "hecsb_ros.reliability.slow_codec"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="hecsb reliability faults",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--repeat", type=int, default=3, help="Repetitions of blackout and restarts")
    ap.add_argument(
        "--rate-hz", type=float, default=20.0, help="Camera rate for the fault scenarios"
    )
    ap.add_argument("--blackout-s", type=float, default=5.0)
    ap.add_argument(
        "--extra-ms", type=float, default=25.0, help="Load test: extra edge cost per frame"
    )
    ap.add_argument("--load-s", type=float, default=60.0, help="Load test length")
    ap.add_argument(
        "--checkpoint", default="", help="Classifier checkpoint; '' = the shipped teacher"
    )
    ap.add_argument("--domain-id", type=int, default=217)
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/reliability"))
    ap.add_argument("--name", default="faults")
    return ap.parse_args(argv)


def _pipeline(args: argparse.Namespace, rate: float, slow: bool = False) -> Pipeline:
    """The png pipeline; ``slow``: its edge takes ``--extra-ms`` longer per frame (the png_slow
    plugin codec)."""
    params: dict[str, dict[str, Any]] = {
        "edge": {"stats_period_s": 0.5},
        "server": {"stats_period_s": 0.5},
    }
    for role in ("edge", "server"):
        if args.checkpoint:
            params[role]["checkpoint"] = args.checkpoint
        if slow:
            params[role]["plugins"] = SLOW_CODEC_MODULE
    pipe = Pipeline(
        args.domain_id,
        Path(tempfile.mkdtemp(prefix="hecsb_faults_")),
        params,
        codec="png_slow" if slow else "png",
        profile="4g",
        rate_hz=str(rate),
    )
    pipe.env["HECSB_EDGE_EXTRA_MS"] = str(args.extra_ms)
    return pipe


def run(args: argparse.Namespace) -> dict[str, Any]:
    import rclpy

    from hecsb_ros.core.codecs import CodecSettings, create_codec
    from hecsb_ros.reliability.fuzz import valid_latent

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=args.domain_id)
    out: dict[str, Any] = {"blackout": [], "server_restart": [], "edge_restart": []}
    try:
        pipe, monitor = _pipeline(args, args.rate_hz), Monitor("hecsb_faults_monitor", context=ctx)
        try:
            pipe.start()
            out["startup_s"] = scenarios.wait_for_flow(monitor, pipe, results=20, timeout=180.0)
            for i in range(args.repeat):
                print(f"[faults] blackout {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
                out["blackout"].append(
                    scenarios.blackout(pipe, monitor, args.blackout_s, args.rate_hz)
                )
                monitor.spin(2.0)
            for key in ("server", "edge"):
                for i in range(args.repeat):
                    print(
                        f"[faults] {key} restart {i + 1}/{args.repeat}",
                        file=sys.stderr,
                        flush=True,
                    )
                    out[f"{key}_restart"].append(
                        scenarios.kill_and_restart(pipe, monitor, key, down_s=3.0)
                    )
                    monitor.spin(2.0)

            class _Holder:
                codec = create_codec("png", CodecSettings(checkpoint=args.checkpoint))

            print("[faults] foreign encoder", file=sys.stderr, flush=True)
            out["foreign_encoder"] = scenarios.foreign_encoder(
                pipe, monitor, valid_latent(_Holder()), 50, 10.0
            )
        finally:
            pipe.stop()
            monitor.destroy()
        print("[faults] overload", file=sys.stderr, flush=True)
        rate = 2 * 1000.0 / args.extra_ms
        pipe = _pipeline(args, rate, slow=True)
        monitor = Monitor("hecsb_load_monitor", context=ctx)
        try:
            pipe.start()
            scenarios.wait_for_flow(monitor, pipe, results=40, timeout=180.0)
            out["overload"] = scenarios.overload(pipe, monitor, args.load_s)
            out["overload"]["sustainable_hz"] = 1000.0 / args.extra_ms
            out["overload"]["camera_set_hz"] = rate
        finally:
            pipe.stop()
            monitor.destroy()
    finally:
        rclpy.try_shutdown(context=ctx)
    return out


def _f(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def markdown(r: dict[str, Any], argv: list[str]) -> str:
    lines = [
        "# Faults and overload",
        "",
        f"Command: `python -m hecsb_ros.cli.faults {' '.join(argv)}`  ",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, 2 cores shared with "
        "other work, recorded "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Codec `png`, link `4g`, every "
        "node its own process "
        "over Fast DDS (localhost); times from a monitor node on the same machine.",
        "",
        f"## Link blackout ({len(r['blackout'])} runs)",
        "",
        "The link emulator drops everything for the blackout (parameter `blackout_s`), then "
        "carries frames "
        "again. Resume = blackout end -> first result that crossed the link after it.",
        "",
        "| run | resume (s) | results during | stale results after | results in 1st s after | gap "
        "in LinkStats (frames) "
        "| empty LinkStats windows | node restarts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, b in enumerate(r["blackout"], 1):
        lines.append(
            f"| {i} | {_f(b['resume_s'], 3)} | {b['results_during_blackout']} | "
            f"{b['stale_results_after']} | "
            f"{b['results_first_second_after']} | {b['sequence_gap_counted']} (expected "
            f"~{b['expected_gap_frames']:.0f}) "
            f"| {b['empty_linkstats_windows']} | {sum(b['restarts'].values())} |"
        )
    for key in ("server", "edge"):
        runs = r[f"{key}_restart"]
        lines += [
            "",
            f"## {key.capitalize()} killed (SIGKILL) and restarted ({len(runs)} runs)",
            "",
            "Down 3 s. Resume = new process started -> first result; ready = process start "
            "-> the node's "
            "start-up log line (imports, model load); the rest is discovery and the first "
            "frame.",
            "",
            "| run | resume (s) | ready (s) | ready -> first result (s) | survivors alive "
            "while down | "
            "upstream progress while down | results 2 s after resume |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for i, k in enumerate(runs, 1):
            lines.append(
                f"| {i} | {_f(k['resume_s'])} | {_f(k['ready_s'])} | "
                f"{_f(k['ready_to_first_result_s'])} | "
                f"{k['survivors_alive_while_down']} | "
                f"{k['upstream_progress_while_down']} | "
                f"{k['results_2s_after_resume']} |"
            )
    fe = r["foreign_encoder"]
    lines += [
        "",
        "## Unknown encoder",
        "",
        f"{fe['foreign_sent']} latents with model id `f00dfeedf00dfeed` published beside "
        "the real stream over "
        f"{fe['window_s']:.1f} s: {fe['refused_model_mismatch']} refused as "
        "`model_mismatch`, "
        f"{fe['foreign_served']} served; {fe['known_results_meanwhile']} results for the "
        "known encoder meanwhile.",
    ]
    o = r["overload"]
    lat = o["latency"]
    lines += [
        "",
        "## Camera at twice the edge's sustainable rate",
        "",
        f"Edge: codec `png_slow` (plugin `{SLOW_CODEC_MODULE}`: png + "
        f"{1000 / o['sustainable_hz']:.0f} ms per frame, at most "
        f"{o['sustainable_hz']:.0f} frames/s); camera set to {o['camera_set_hz']:.0f} "
        "frames/s; "
        f"{o['seconds']:.0f} s.",
        "",
        "| frames in (camera) | processed (edge) | dropped stale | camera rate | edge rate "
        "| latency p50 / p95 / p99 (ms) |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {o['camera_frames_sent']} | {o['edge_processed']} | {o['dropped_stale']} "
        f"({100 * o['drop_fraction']:.1f}%) | "
        f"{o['camera_rate_hz']:.1f}/s | {o['edge_rate_hz']:.1f}/s | {_f(lat['p50_ms'], 1)} "
        f"/ {_f(lat['p95_ms'], 1)} / "
        f"{_f(lat['p99_ms'], 1)} |",
        "",
        "Latency p95 by third of the run: "
        + ", ".join(_f(t["p95_ms"], 1) + " ms" for t in o["latency_by_third"])
        + ". RSS start -> end (MiB): "
        + ", ".join(
            f"{k} {o['rss_start_mb'][k]:.1f} -> {o['rss_end_mb'][k]:.1f}"
            for k in o["rss_start_mb"]
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    report = run(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.name}.md").write_text(markdown(report, argv))
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"[faults] wrote {args.out_dir / (args.name + '.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
