"""Latency per codec and link profile (the seed paper's Table 2), computed and measured over ROS 2.

Computed: ``transfer = 8 * mean payload bytes / rate`` on an idle link of the profile's rate (no
propagation delay, as the table), edge and server halves from the benchmark's timing phase, and
``total = edge + transfer + server``.

Measured: the demo pipeline (camera source -> edge -> link emulator -> server, separate processes
over DDS) runs for each codec and profile through ``python -m hecsb_ros.cli.run_demo`` and its JSON
summary gives the medians of the edge time, the transfer (edge send -> the server's middleware
receive timestamp, through the emulated link), the time the latent then waited at the server (its
executor, the newest slot; ``queue_ms``, apart from the link), the server's compute, and the
capture -> result latency (``total``; it also
contains the DDS hops camera -> edge and server -> monitor that the computed total leaves out).
Each profile also runs the ``null`` codec (a one-byte payload, no compute): its total is the
harness floor every codec pays (DDS hops, the relay, serialisation), and each row's
``above_floor_ms`` is its total minus that floor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hecsb_ros.core.link import PRESETS

#: Table 2's profiles, in its order.
PROFILES: tuple[str, ...] = ("4g", "wifi", "5g")
PROFILE_LABELS = {"4g": "4G / 12.0 Mbps", "wifi": "Wi-Fi / 54.0 Mbps", "5g": "5G / 66.9 Mbps"}


def transfer_ms(payload_bytes: float, profile: str) -> float:
    """Serialization time of ``payload_bytes`` at the profile's rate, in ms."""
    rate_mbps, delay_ms = PRESETS[profile]
    return payload_bytes * 8.0 / (rate_mbps * 1e3) + delay_ms


@dataclass(frozen=True)
class LatencyRow:
    """One codec at its operating point on one profile (times in ms)."""

    profile: str
    codec: str
    quality: int
    setting: str
    payload_bytes: float
    accuracy: float
    transfer_ms: float
    edge_ms: float
    server_ms: float
    total_ms: float
    frames: int = 0
    message_bytes: float = float("nan")
    above_floor_ms: float = float("nan")
    # measured: middleware receive at the server -> its network call
    queue_ms: float = float("nan")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def computed_rows(operating: list[dict]) -> list[LatencyRow]:
    """Rows from rate-accuracy results (dicts with codec, quality, setting, bytes_mean, accuracy,
    edge_ms, server_ms), one per profile and codec."""
    rows = []
    for profile in PROFILES:
        for r in operating:
            t = transfer_ms(r["bytes_mean"], profile)
            rows.append(
                LatencyRow(
                    profile,
                    r["codec"],
                    int(r["quality"]),
                    r["setting"],
                    r["bytes_mean"],
                    r["accuracy"],
                    t,
                    r["edge_ms"],
                    r["server_ms"],
                    r["edge_ms"] + t + r["server_ms"],
                )
            )
    return rows


def run_demo(
    codec: str,
    quality: int,
    profile: str,
    frames: int,
    rate_hz: float,
    domain_id: int,
    timeout_s: float = 300.0,
    log_dir: Path | None = None,
    extra: tuple[str, ...] = (),
) -> dict:
    """Run the ROS pipeline once through ``hecsb_ros.cli.run_demo``; returns its JSON summary.

    Raises RuntimeError (with the tail of its output) when the run fails.
    """
    with tempfile.TemporaryDirectory(prefix="hecsb_bench_") as tmp:
        out = Path(tmp) / "summary.json"
        cmd = [
            sys.executable,
            "-m",
            "hecsb_ros.cli.run_demo",
            "--codec",
            codec,
            "--quality",
            str(quality),
            "--profile",
            profile,
            "--frames",
            str(frames),
            "--rate-hz",
            str(rate_hz),
            "--json",
            str(out),
            "--domain-id",
            str(domain_id),
            "--timeout",
            str(timeout_s),
            *extra,
        ]
        if log_dir is not None:
            cmd += ["--log-dir", str(log_dir / f"{codec}_q{quality}_{profile}")]
        env = dict(os.environ)
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s + 60)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"{' '.join(cmd)} failed "
                f"({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
            )
        return json.loads(out.read_text())


HARNESS = {"codec": "null", "quality": 0, "setting": "harness floor"}


def measured_rows(
    operating: list[dict],
    frames: int = 200,
    rate_hz: float = 20.0,
    domain_id: int = 211,
    log=print,
    log_dir: Path | None = None,
    retries: int = 1,
    extra: tuple[str, ...] = (),
) -> list[LatencyRow]:
    """Run the pipeline for the harness (the null codec) and every operating point on every
    profile; one row per run. ``extra``: more ``run_demo`` arguments (teacher, frame source)."""
    rows = []
    for profile in PROFILES:
        floor = None
        for r in [HARNESS, *operating]:
            start = time.time()
            for attempt in range(retries + 1):
                try:
                    s = run_demo(
                        r["codec"],
                        int(r["quality"]),
                        profile,
                        frames,
                        rate_hz,
                        domain_id,
                        log_dir=log_dir,
                        extra=extra,
                    )
                    break
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    if attempt == retries:
                        raise
                    log(f"retrying {r['codec']} on {profile}: {str(exc)[-500:]}")
            total = s["latency_p50_ms"]
            floor = total if r is HARNESS else floor
            rows.append(
                LatencyRow(
                    profile,
                    r["codec"],
                    int(r["quality"]),
                    r["setting"],
                    s["payload_bytes_mean"],
                    s["accuracy"],
                    s["transfer_p50_ms"],
                    s["edge_p50_ms"],
                    s.get("server_compute_p50_ms", s["server_p50_ms"]),
                    total,
                    int(s["frames"]),
                    float(s.get("message_bytes_mean", float("nan"))),
                    total - floor,
                    float(s.get("server_queue_p50_ms", float("nan"))),
                )
            )
            log(
                f"ROS {profile:4s} {r['codec']:10s} q{r['quality']}: {s['frames']} frames, "
                "transfer "
                f"{s['transfer_p50_ms']:.3f} ms, edge {s['edge_p50_ms']:.3f} ms, server queue "
                f"{s.get('server_queue_p50_ms', float('nan')):.3f} ms, server "
                f"{s['server_p50_ms']:.3f} ms, "
                f"total {total:.3f} ms ({time.time() - start:.0f} s)"
            )
    return rows
