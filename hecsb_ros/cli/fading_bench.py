"""A fading link: every fixed rate level against budget rate control, deadline misses and accuracy.

    python -m hecsb_ros.cli.fading_bench                              # writes benchmarks/fading/
    python -m hecsb_ros.cli.fading_bench --rate-scale 0.001 --out-dir benchmarks/fading_scaled
    python -m hecsb_ros.cli.fading_bench --teacher efficientnet_lite0 --source folder --path FRAMES
    \
        --budget-ms 250 --out-dir benchmarks/fading_camera      # camera scale: 640 x 480 frames

One robot (camera source at ``--rate`` Hz, edge, link emulator, server) through the process runner;
the link emulator replays ``--schedule`` (Mbit/s:seconds, repeated; every rate times
``--rate-scale``). Each cell is one fixed level (``quality``) or ``rate_control: budget`` with
``latency_budget_ms`` = ``--budget-ms`` (one budget cell per ``--worst-link`` value: the edge's
``worst_link_kbit_s``, the slowest link a frame must survive); after a warm-up (``--warmup`` s, the
controller's start included) it counts ``--cycles`` whole schedule cycles. A frame meets its
deadline when its result arrives within the budget of its capture; frames the camera sent in the
window without a result count as misses. Reported per cell: frames sent, results, deadline misses
%, mean payload bytes, accuracy of the results that met the deadline (misses count as wrong in
"accuracy, misses wrong"), capture -> result p50 / p95. Results go to ``results.csv``,
``README.md`` and ``fading.png``.
"""

from __future__ import annotations

import argparse
import math
import os
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
from hecsb_ros.core.bench.timing import percentile

FIELDS = (
    "mode",
    "level",
    "worst_link_kbit_s",
    "budget_ms",
    "schedule",
    "seconds",
    "sent",
    "results",
    "met",
    "miss_pct",
    "payload_bytes_mean",
    "accuracy_met",
    "accuracy_all_frames",
    "latency_p50_ms",
    "latency_p95_ms",
    "levels_used",
)


def scaled_schedule(schedule: str, scale: float) -> tuple[str, float]:
    """``"54:10,2:10"`` x 0.5 -> ``("27:10,1:10", 20.0)``: the schedule with every rate scaled, and
    its cycle in s."""
    parts, cycle = [], 0.0
    for item in schedule.split(","):
        rate, seconds = (float(v) for v in item.split(":"))
        parts.append(f"{rate * scale:g}:{seconds:g}")
        cycle += seconds
    return ",".join(parts), cycle


def run_cell(
    mode: str,
    level: int,
    args: argparse.Namespace,
    schedule: str,
    cycle_s: float,
    domain_id: int,
    log_dir: Path,
    worst_link: float = 0.0,
) -> dict:
    edge: dict = {"stats_period_s": 1.0}
    if args.max_in_flight is not None:
        edge["max_in_flight"] = args.max_in_flight
    if mode == "budget":
        edge.update(
            rate_control="budget",
            latency_budget_ms=float(args.budget_ms),
            worst_link_kbit_s=float(worst_link),
        )
    else:
        edge["quality"] = level
    params = {
        "edge": edge,
        "camera_source": {"stats_period_s": 0.5},
        "link_emulator": {"rate_schedule": schedule, "stats_period_s": 1.0},
    }
    graph = {
        "rate_hz": str(args.rate),
        "source": args.source,
        **({"path": args.path} if args.path else {}),
        **({"codec": args.codec} if args.codec else {}),
        **({"teacher": args.teacher} if args.teacher else {}),
    }
    with monitored_pipeline(
        domain_id, log_dir, "fading_bench_monitor", params=params, **graph
    ) as (pipe, monitor):
        cam = pipe.specs["camera_source"].name
        pipe.start(timeout=600.0)
        if not monitor.spin_until(lambda: len(monitor.results) > 0, 300.0):
            pipe.check()
            raise TimeoutError("no result within 300 s")
        # The schedule runs from the link emulator's start: count whole cycles from a cycle
        # boundary.
        since_start = time.monotonic() - pipe.started_at["link_emulator"]
        first = math.ceil((since_start + args.warmup) / cycle_s) * cycle_s
        monitor.spin(first - since_start)
        t0 = time.monotonic()
        monitor.spin(args.cycles * cycle_s)
        t1 = time.monotonic()
        # the window's last frames get their chance to arrive
        monitor.spin(args.budget_ms / 1e3 * 3 + 1.0)
        pipe.check()
        sent, _, _, _ = monitor.diag_delta(cam, "frames_sent", t0, t1)
        t0_ns, t1_ns = (time.time_ns() - int((time.monotonic() - t) * 1e9) for t in (t0, t1))
        window = [r for r in monitor.results if t0_ns <= r.capture_ns < t1_ns]
        met = [r for r in window if r.latency_ms <= args.budget_ms]
        sent = int(sent) if not math.isnan(sent) else len(window)
        sent = max(sent, len(window))
        labelled_met = [r.correct for r in met if r.correct is not None]
        # frames of a partly labelled source (a folder's labels.csv) that were labelled: the share
        # the window's results show, applied to every frame sent (a lost frame's label is not
        # known)
        labelled_share = (
            (sum(r.correct is not None for r in window) / len(window)) if window else 1.0
        )
        return {
            "mode": mode
            if mode == "fixed" or not worst_link
            else f"budget, >= {worst_link:g} kbit/s",
            "level": level if mode == "fixed" else -1,
            "worst_link_kbit_s": worst_link if mode == "budget" else math.nan,
            "budget_ms": args.budget_ms,
            "schedule": schedule,
            "seconds": round(t1 - t0, 1),
            "sent": sent,
            "results": len(window),
            "met": len(met),
            "miss_pct": 100.0 * (sent - len(met)) / sent if sent else math.nan,
            "payload_bytes_mean": float(np.mean([r.payload_bytes for r in window]))
            if window
            else math.nan,
            "accuracy_met": float(np.mean(labelled_met)) if labelled_met else math.nan,
            "accuracy_all_frames": sum(labelled_met) / (sent * labelled_share)
            if sent and labelled_share
            else math.nan,
            "latency_p50_ms": percentile([r.latency_ms for r in window], 50),
            "latency_p95_ms": percentile([r.latency_ms for r in window], 95),
            "levels_used": _levels_used(monitor, t0, t1),
        }


def _levels_used(monitor, t0: float, t1: float) -> str:
    """The rate levels the edge reported on edge_stats in the window, with their share of
    reports."""
    levels = [int(m.rate_level) for t, m in monitor.edge_stats if t0 <= t <= t1]
    if not levels:
        return ""
    values, counts = np.unique(levels, return_counts=True)
    return " ".join(f"{v}:{100 * c / len(levels):.0f}%" for v, c in zip(values, counts))


def _cell(key: str, value) -> str:
    if key.startswith("accuracy"):
        return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"
    return fmt(value)


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for row in rows:
        budget = row["mode"].startswith("budget")
        ax.scatter(
            row["miss_pct"],
            100 * row["accuracy_all_frames"],
            marker="*" if budget else "o",
            s=160 if budget else 40,
            color="tab:red" if budget else "tab:blue",
        )
        ax.annotate(
            row["mode"] if budget else f"level {row['level']}",
            (row["miss_pct"], 100 * row["accuracy_all_frames"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    ax.set(
        xlabel="deadline misses (%)",
        ylabel="accuracy over all frames, misses wrong (%)",
        title=title,
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    rows: list[dict],
    args: argparse.Namespace,
    schedule: str,
    out_dir: Path,
    command: str,
    started: float,
    seconds: float,
    load: tuple[float, float],
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, FIELDS, out_dir / "results.csv", digits=4)
    plot(
        rows,
        out_dir / "fading.png",
        f"link {schedule} Mbit/s:s, budget {args.budget_ms:g} ms, {args.rate:g} Hz",
    )
    cols = [
        ("mode", "mode"),
        ("level", "level"),
        ("sent", "frames sent"),
        ("results", "results"),
        ("miss_pct", "deadline misses %"),
        ("payload_bytes_mean", "payload B mean"),
        ("accuracy_met", "accuracy of met"),
        ("accuracy_all_frames", "accuracy, misses wrong"),
        ("latency_p50_ms", "latency p50 ms"),
        ("latency_p95_ms", "p95 ms"),
        ("levels_used", "levels used"),
    ]
    lines = [
        "# A fading link: fixed rate levels against budget rate control",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}"
        f" (shared; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)  ",
        f"Run: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, {seconds / 60:.1f} min "
        " ",
        f"Setting: codec {args.codec or 'default (hecsb)'}, shipped levels of teacher "
        f"{args.teacher or 'Fashion-MNIST (shipped)'}, camera source ({args.source}"
        + (f" {args.path}" if args.path else "")
        + f") at "
        f"{args.rate:g} Hz, link emulator schedule `{schedule}` (Mbit/s:seconds"
        + (
            f", the seed schedule `{args.schedule}` times {args.rate_scale:g}"
            if args.rate_scale != 1
            else ""
        )
        + f"), budget {args.budget_ms:g} ms capture -> result; {args.cycles} schedule cycle(s) "
        "counted per cell "
        f"after {args.warmup:g} s of warm-up; edge max_in_flight "
        f"{'default' if args.max_in_flight is None else args.max_in_flight}.",
        "",
        *markdown_table(rows, cols, _cell),
    ]
    fixed_ok = [r for r in rows if r["mode"] == "fixed" and r["miss_pct"] <= 1.0]
    lines += [""]
    for budget in (r for r in rows if r["mode"] != "fixed"):
        best = max(fixed_ok, key=lambda r: r["accuracy_met"], default=None)
        lines.append(
            f"- {budget['mode']}: {fmt(budget['miss_pct'])}% misses, accuracy of met "
            "frames "
            f"{100 * budget['accuracy_met']:.1f}%; the most accurate fixed level with <= "
            "1% misses: "
            + (
                f"level {best['level']} at {100 * best['accuracy_met']:.1f}% "
                f"({fmt(best['miss_pct'])}% misses)."
                if best
                else "none."
            )
        )
    lines += [
        "",
        "Deadline misses: frames the camera sent in the window whose result did not "
        "arrive within the "
        "budget of their capture (late or never). Accuracy of met: over the labelled "
        "results that met the deadline "
        "(the labels the source carries: Fashion-MNIST's, or a folder's labels.csv); "
        "accuracy, misses wrong: "
        "correct met results over the labelled frames sent (for a partly labelled folder, "
        "the frames sent times "
        "the labelled share of the results). Levels used: the edge's `rate_level` on "
        "`edge_stats` "
        "in the window.",
        "",
        "![fading](fading.png)",
        "",
    ]
    (out_dir / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hecsb bench fading",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument(
        "--schedule", default="54:10,2:10,12:10", help="link schedule, Mbit/s:seconds,..."
    )
    ap.add_argument(
        "--rate-scale", type=float, default=1.0, help="multiply every rate of the schedule"
    )
    ap.add_argument("--rate", type=float, default=10.0, help="camera frames per second")
    ap.add_argument("--budget-ms", type=float, default=100.0, help="capture -> result deadline")
    ap.add_argument("--cycles", type=int, default=1, help="schedule cycles counted per cell")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before counting")
    ap.add_argument(
        "--levels",
        type=int,
        nargs="*",
        default=None,
        help="fixed levels; default: every shipped one",
    )
    ap.add_argument("--codec", default="", help="a learned codec with levels; '' = the default")
    ap.add_argument(
        "--teacher", default="", help="teacher (e.g. efficientnet_lite0); '' = the shipped one"
    )
    ap.add_argument("--source", default="dataset", help="camera source: dataset, folder or video")
    ap.add_argument("--path", default="", help="image folder / video for --source folder / video")
    ap.add_argument("--no-budget", action="store_true", help="fixed levels only")
    ap.add_argument(
        "--worst-link",
        type=float,
        nargs="+",
        default=[0.0],
        help="budget cells: the edge's worst_link_kbit_s, one cell each (0 = the link "
        "as estimated)",
    )
    ap.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="the edge's max_in_flight (0 = no limit); default: the edge's own",
    )
    ap.add_argument("--domain-id", type=int, default=None)
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/fading"))
    args = ap.parse_args(argv)
    from hecsb_ros.core.codecs.learned import shipped_levels
    from hecsb_ros.params import DEFAULT_CODEC

    levels = (
        args.levels
        if args.levels is not None
        else sorted(shipped_levels(args.codec or DEFAULT_CODEC, args.teacher))
    )
    schedule, cycle = scaled_schedule(args.schedule, args.rate_scale)
    started, rows, load0 = time.time(), [], os.getloadavg()[0]
    domain = local_domain(args.domain_id)
    log_root = Path(tempfile.mkdtemp(prefix="hecsb_fading_"))
    if any(not f >= 0.0 for f in args.worst_link):
        ap.error("--worst-link values must be >= 0 kbit/s")
    cells = [("fixed", lv, 0.0) for lv in levels] + (
        [] if args.no_budget else [("budget", -1, f) for f in args.worst_link]
    )
    for mode, level, fade in cells:
        what = level if mode == "fixed" else (f"worst link {fade:g} kbit/s" if fade else "")
        print(f"[fading_bench] {mode} {what} (domain {domain})", file=sys.stderr, flush=True)
        row = run_cell(
            mode, level, args, schedule, cycle, domain, log_root / f"{mode}_{level}_{fade:g}", fade
        )
        rows.append(row)
        domain += 1
        print(
            "  "
            + ", ".join(
                f"{k} {fmt(row[k])}"
                for k in (
                    "sent",
                    "results",
                    "miss_pct",
                    "payload_bytes_mean",
                    "accuracy_met",
                    "levels_used",
                )
            ),
            file=sys.stderr,
            flush=True,
        )
    command = "python -m hecsb_ros.cli.fading_bench " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    write_report(
        rows,
        args,
        schedule,
        args.out_dir,
        command.strip(),
        started,
        time.time() - started,
        (load0, os.getloadavg()[0]),
    )
    print((args.out_dir / "README.md").read_text())
    print(f"logs: {log_root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
