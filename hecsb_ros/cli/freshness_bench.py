"""Fresh results under overload: capture -> result age against the compute it took, per queue
policy and edge in-flight limit, with every camera frame accounted for.

    hecsb bench freshness --teacher efficientnet_lite0 --source folder --path FRAMES \
        --rates 10 30 --max-in-flight 0 1 2 --max-frame-wait 0 0.5 --fifo --rounds 2 --out-dir
        benchmarks/freshness

One robot (camera source, edge, link emulator, server: four processes through the process runner);
the camera publishes ``--frames`` frames at each rate and stops. Per cell (rate x configuration,
the configurations run in turn, ``--rounds`` times): after the camera's last frame the nodes'
counters must settle; then where every frame went (results, skipped at the edge or the server, lost
or refused with reasons) and, over the results captured after ``--warmup`` s, capture -> result p50
/ p95 against the freshness target ``1.5 x (edge p50 + server compute p50) + link p50`` (link =
edge send -> the server's middleware receive). Results go to ``results.csv`` (one row per cell and
round) and ``README.md`` (medians over the rounds).
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

#: (field in the row, node, /diagnostics key): the counters every frame is accounted for with.
COUNTERS = (
    ("camera_sent", "hecsb_camera_source", "frames_sent"),
    ("edge_in", "hecsb_edge", "images_in"),
    ("edge_lost", "hecsb_edge", "frames_lost"),
    ("edge_drops", "hecsb_edge", "drops"),
    ("edge_skipped", "hecsb_edge", "skipped"),
    ("latents_sent", "hecsb_edge", "latents_sent"),
    ("in_flight_expired", "hecsb_edge", "in_flight_expired"),
    ("stale_skipped", "hecsb_edge", "stale_skipped"),
    ("link_relayed", "hecsb_link_emulator", "relayed"),
    ("link_drops", "hecsb_link_emulator", "drops"),
    ("server_received", "hecsb_server", "received"),
    ("server_drops", "hecsb_server", "drops"),
    ("server_skipped", "hecsb_server", "skipped"),
    ("server_results", "hecsb_server", "results"),
)
FIELDS = (
    "config",
    "queue_policy",
    "max_in_flight",
    "max_frame_wait",
    "rate_hz",
    "round",
    *(c[0] for c in COUNTERS),
    "results",
    "accounted",
    "results_per_s",
    "age_p50_ms",
    "age_p95_ms",
    "edge_p50_ms",
    "server_compute_p50_ms",
    "server_queue_p50_ms",
    "server_queue_p95_ms",
    "link_p50_ms",
    "link_p95_ms",
    "target_ms",
    "p95_over_target",
    "met",
    "load_start",
    "load_end",
)


def _settled(monitor, quiet_s: float = 2.5, timeout: float = 90.0) -> bool:
    """Wait until every counter of :data:`COUNTERS` has reported and none changed for
    ``quiet_s``."""
    last, since = None, time.monotonic()

    def still() -> bool:
        nonlocal last, since
        now = [monitor.diagnostics.get(node, {}).get(key) for _, node, key in COUNTERS]
        if now != last:
            last, since = now, time.monotonic()
        return None not in now and time.monotonic() - since >= quiet_s

    return monitor.spin_until(still, timeout)


def run_cell(
    policy: str,
    limit: int,
    frame_wait: float,
    rate: float,
    args: argparse.Namespace,
    domain_id: int,
    log_dir: Path,
) -> dict:
    """One run of the pipeline; the row of :data:`FIELDS` (but config and round)."""
    load0 = os.getloadavg()[0]
    period = {"stats_period_s": 0.5}
    params = {
        "edge": {
            **period,
            "queue_policy": policy,
            "max_in_flight": limit,
            "max_frame_wait": frame_wait,
        },
        "server": {**period, "queue_policy": policy},
        "camera_source": {"frames": args.frames, "loop": True},
        "link_emulator": period,
    }
    graph = {
        "rate_hz": str(rate),
        "source": args.source,
        "profile": args.profile,
        **({"path": args.path} if args.path else {}),
        **({"codec": args.codec} if args.codec else {}),
        **({"teacher": args.teacher} if args.teacher else {}),
    }
    with monitored_pipeline(
        domain_id, log_dir, "freshness_bench_monitor", params=params, **graph
    ) as (pipe, monitor):
        pipe.start(timeout=600.0)
        sent = lambda: monitor.diag_int("hecsb_camera_source", "frames_sent")  # noqa: E731
        if not monitor.spin_until(lambda: sent() >= args.frames, args.frames / rate + 300.0):
            pipe.check()
            raise TimeoutError(f"the camera sent {sent()} of {args.frames} frames")
        if not _settled(monitor):
            raise TimeoutError(f"counters did not settle: {monitor.diagnostics}")
        pipe.check()
        n = {field: monitor.diag_int(node, key) for field, node, key in COUNTERS}
        results = list(monitor.results)
    first = min((r.capture_ns for r in results), default=0)
    timed = [r for r in results if r.capture_ns >= first + args.warmup * 1e9]
    edge = percentile([r.edge_ms for r in timed], 50)
    compute = percentile([r.server_ms - r.server_wait_ms for r in timed], 50)
    link = percentile([r.transfer_ms for r in timed], 50)
    ages = [r.latency_ms for r in timed]
    target = 1.5 * (edge + compute) + link
    arrivals = sorted(r.arrival_mono for r in results)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else math.nan
    # Every camera frame: a result, skipped (edge or server), lost or refused (edge: middleware
    # losses and bad input, link emulator, server); nothing in flight once the counters settled.
    gone = (
        n["edge_skipped"]
        + n["server_skipped"]
        + n["edge_drops"]
        + n["link_drops"]
        + n["server_drops"]
    )
    row = {
        "queue_policy": policy,
        "max_in_flight": limit,
        "max_frame_wait": frame_wait,
        "rate_hz": rate,
        **n,
        "results": len(results),
        "accounted": n["camera_sent"] == len(results) + gone
        and n["server_results"] == len(results),
        "results_per_s": (len(results) - 1) / span if span > 0 else math.nan,
        "age_p50_ms": percentile(ages, 50),
        "age_p95_ms": percentile(ages, 95),
        "edge_p50_ms": edge,
        "server_compute_p50_ms": compute,
        "server_queue_p50_ms": percentile([r.server_wait_ms for r in timed], 50),
        "server_queue_p95_ms": percentile([r.server_wait_ms for r in timed], 95),
        "link_p50_ms": link,
        "link_p95_ms": percentile([r.transfer_ms for r in timed], 95),
        "target_ms": target,
        "load_start": load0,
        "load_end": os.getloadavg()[0],
    }
    row["p95_over_target"] = row["age_p95_ms"] / target if target > 0 else math.nan
    row["met"] = bool(row["age_p95_ms"] <= target)
    return row


def _median_rows(rows: list[dict]) -> list[dict]:
    """One row per (config, rate): the median of each figure over the rounds; counts summed."""
    out = []
    keys = sorted(
        {(r["config"], r["rate_hz"]) for r in rows},
        key=lambda k: (k[1], [r["config"] for r in rows].index(k[0])),
    )
    for config, rate in keys:
        group = [r for r in rows if r["config"] == config and r["rate_hz"] == rate]
        med = {
            k: float(np.median([r[k] for r in group]))
            for k in FIELDS
            if isinstance(group[0][k], float) and k not in ("rate_hz", "max_frame_wait")
        }
        out.append(
            {
                **group[0],
                **med,
                "rounds": len(group),
                "accounted": f"{sum(bool(r['accounted']) for r in group)}/{len(group)}",
                "met": f"{sum(bool(r['met']) for r in group)}/{len(group)}",
                "camera_sent": sum(r["camera_sent"] for r in group),
                "results": sum(r["results"] for r in group),
                "skipped": sum(r["edge_skipped"] + r["server_skipped"] for r in group),
                "refused_lost": sum(
                    r["edge_drops"] + r["link_drops"] + r["server_drops"] for r in group
                ),
                "in_flight_expired": sum(r["in_flight_expired"] for r in group),
                "stale_skipped": sum(r["stale_skipped"] for r in group),
            }
        )
    return out


def write_report(
    rows: list[dict],
    args: argparse.Namespace,
    out_dir: Path,
    command: str,
    started: float,
    seconds: float,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, ("config",) + FIELDS[1:], out_dir / "results.csv", digits=2)
    med = _median_rows(rows)
    cols = [
        ("rate_hz", "camera Hz"),
        ("config", "configuration"),
        ("results_per_s", "results/s"),
        ("age_p50_ms", "age p50 ms"),
        ("age_p95_ms", "age p95 ms"),
        ("edge_p50_ms", "edge p50"),
        ("server_compute_p50_ms", "server compute p50"),
        ("link_p50_ms", "link p50"),
        ("server_queue_p95_ms", "server queue p95"),
        ("target_ms", "target ms"),
        ("p95_over_target", "p95 / target"),
        ("met", "target met (rounds)"),
        ("camera_sent", "frames sent"),
        ("results", "results"),
        ("skipped", "skipped"),
        ("stale_skipped", "of them stale"),
        ("refused_lost", "refused / lost"),
        ("in_flight_expired", "in-flight expired"),
        ("accounted", "all accounted (rounds)"),
    ]
    loads = [r["load_start"] for r in rows] + [r["load_end"] for r in rows]

    def cell(key, value):
        return f"{value:.2f}" if key == "p95_over_target" else fmt(value)

    lines = [
        "# Fresh results under overload: queue policy and the edge's in-flight limit",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}"
        f" shared with other work (1-minute load average {min(loads):.1f} to {max(loads):.1f} "
        f"over the cells)  ",
        f"Run: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, {seconds / 60:.1f} "
        f"min, {args.rounds} "
        "round(s): every configuration once per round, in turn, so that each sees the same load  ",
        f"Setting: codec {args.codec or 'default (hecsb)'}, teacher {args.teacher or 'shipped'}, "
        "camera source "
        f"({args.source}{' ' + args.path if args.path else ''}) publishing {args.frames} frames "
        "per cell, link "
        f"emulator profile {args.profile}; all four nodes on this machine; latency over the "
        "results captured "
        f"after {args.warmup:g} s.",
        "",
        "Medians over the rounds (counts summed):",
        "",
        *markdown_table(med, cols, cell),
        "",
        "- age: capture -> result at the monitor (same clock). edge: the edge's time per frame "
        "(conversion, "
        "encoder, entropy coding); server compute: its decode and network (server total minus its "
        "queue); link: "
        "edge send -> the server's middleware receive (the link emulator included).",
        "- target: 1.5 x (edge p50 + server compute p50) + link p50, each from the same cell; met "
        "when age p95 "
        "<= target.",
        "- accounted: frames sent = results + skipped (edge + server) + refused or lost (edge "
        "drops: bad input and "
        "middleware losses; link emulator drops; server drops), with the counters settled after "
        "the camera's last "
        "frame. Of them stale: frames skipped by the edge's max_frame_wait rule. in-flight "
        "expired: latents whose result did not come back within the edge's in_flight_timeout_ms "
        "(they are answered late or lost, and counted there).",
        "",
        "One row per cell and round: `results.csv`.",
        "",
    ]
    (out_dir / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hecsb bench freshness",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument(
        "--rates", type=float, nargs="+", default=[10.0, 30.0], help="camera frames per second"
    )
    ap.add_argument("--frames", type=int, default=150, help="frames the camera publishes per cell")
    ap.add_argument(
        "--max-in-flight",
        type=int,
        nargs="+",
        default=[0, 1],
        help="edge max_in_flight values, each a cell with queue_policy newest (0 = no limit)",
    )
    ap.add_argument(
        "--max-frame-wait",
        type=float,
        nargs="+",
        default=[0.5],
        help="edge max_frame_wait values, each a cell with every max_in_flight > 0 (0 = off)",
    )
    ap.add_argument(
        "--fifo", action="store_true", help="also a cell with queue_policy fifo on edge and server"
    )
    ap.add_argument("--rounds", type=int, default=1, help="times every cell runs (in turn)")
    ap.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of results left out of the latency figures",
    )
    ap.add_argument("--codec", default="", help="codec; '' = the default")
    ap.add_argument(
        "--teacher", default="", help="teacher (e.g. efficientnet_lite0); '' = the shipped one"
    )
    ap.add_argument("--source", default="dataset", help="camera source: dataset, folder or video")
    ap.add_argument("--path", default="", help="image folder / video for --source folder / video")
    ap.add_argument("--profile", default="4g", help="link emulator profile")
    ap.add_argument("--domain-id", type=int, default=None)
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/freshness"))
    args = ap.parse_args(argv)
    if args.frames < 10 or args.rounds < 1 or any(v < 0 for v in args.max_in_flight):
        ap.error("--frames >= 10, --rounds >= 1, --max-in-flight values >= 0")
    configs = []
    for v in args.max_in_flight:
        if v == 0:
            configs.append(("newest, max_in_flight 0 (off)", "newest", 0, 0.0))
        else:
            configs += [
                (f"newest, max_in_flight {v}, max_frame_wait {w:g}", "newest", v, w)
                for w in args.max_frame_wait
            ]
    if args.fifo:
        configs.append(("fifo", "fifo", 0, 0.0))
    started, rows = time.time(), []
    domain = local_domain(args.domain_id)
    log_root = Path(tempfile.mkdtemp(prefix="hecsb_freshness_"))
    for rnd in range(args.rounds):
        for rate in args.rates:
            for name, policy, limit, frame_wait in configs:
                print(
                    f"[freshness_bench] round {rnd + 1}: {rate:g} Hz, {name} (domain {domain})",
                    file=sys.stderr,
                    flush=True,
                )
                row = run_cell(
                    policy,
                    limit,
                    frame_wait,
                    rate,
                    args,
                    domain,
                    log_root / f"r{rnd}_{rate:g}_{policy}_{limit}_{frame_wait:g}",
                )
                rows.append({"config": name, "round": rnd + 1, **row})
                domain = 120 + (domain - 119) % 60
                print(
                    "  "
                    + ", ".join(
                        f"{k} {fmt(row[k])}"
                        for k in (
                            "results_per_s",
                            "age_p50_ms",
                            "age_p95_ms",
                            "edge_p50_ms",
                            "server_compute_p50_ms",
                            "link_p50_ms",
                            "target_ms",
                            "met",
                            "camera_sent",
                            "results",
                            "edge_skipped",
                            "server_skipped",
                            "accounted",
                        )
                    ),
                    file=sys.stderr,
                    flush=True,
                )
    command = "hecsb bench freshness " + " ".join(argv if argv is not None else sys.argv[1:])
    write_report(rows, args, args.out_dir, command.strip(), started, time.time() - started)
    print((args.out_dir / "README.md").read_text())
    print(f"logs: {log_root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
