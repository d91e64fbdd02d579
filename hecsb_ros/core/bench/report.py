"""Benchmark outputs: CSV, the Fig. 8 plot, the Table 2 Markdown, matched-accuracy ratios,
claims."""

from __future__ import annotations

import csv
import math
import os
import platform
import textwrap
import time
from pathlib import Path
from typing import Sequence

from hecsb_ros.core.bench import compare
from hecsb_ros.core.bench.latency import PROFILE_LABELS, PROFILES, LatencyRow
from hecsb_ros.core.bench.points import CLASSIC_INPUT_CODECS, INPUT_CODECS, LABELS

CHAMPION = "hecsb"


def write_csv(rows: Sequence[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def curves(rows: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """Codec -> [(mean bytes, accuracy)] in :data:`LABELS` order."""
    out: dict[str, list[tuple[float, float]]] = {}
    for codec in LABELS:
        pts = [(float(r["bytes_mean"]), float(r["accuracy"])) for r in rows if r["codec"] == codec]
        if pts:
            out[codec] = sorted(pts)
    return out


def plot(rows: Sequence[dict], teacher_accuracy: float, path: Path, title: str) -> Path:
    """Accuracy against mean payload bytes (log x), one curve per codec, the teacher as a line."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {
        "hecsb": ("tab:red", "o", 2.4),
        "hecsb_light": ("tab:orange", "h", 2.0),
        "svb": ("tab:blue", "s", 1.4),
        "crbq": ("tab:purple", "D", 1.4),
        "factorized": ("tab:olive", "v", 1.4),
        "hyperprior": ("tab:cyan", "^", 1.4),
        "jpeg": ("tab:brown", "x", 1.2),
        "webp": ("tab:green", "P", 1.2),
        "png": ("tab:gray", "*", 1.2),
    }
    styles.update(
        {
            "jpeg_frame": ("tab:brown", "1", 1.0),
            "webp_frame": ("tab:green", "2", 1.0),
            "png_frame": ("tab:gray", "3", 1.0),
        }
    )
    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=120)
    for codec, pts in curves(rows).items():
        color, marker, width = styles.get(codec, ("black", ".", 1.0))
        ax.plot(
            [b for b, _ in pts],
            [100 * a for _, a in pts],
            marker=marker,
            color=color,
            lw=width,
            ms=5,
            label=LABELS.get(codec, codec),
            ls="--" if codec.endswith("_frame") else "-",
        )
        mine = sorted(
            (float(r["bytes_mean"]), r) for r in rows if r["codec"] == codec and "accuracy_lo" in r
        )
        if mine:  # 95% paired-bootstrap whiskers
            acc = [100 * float(r["accuracy"]) for _, r in mine]
            err = [
                [a - 100 * float(r["accuracy_lo"]) for a, (_, r) in zip(acc, mine)],
                [100 * float(r["accuracy_hi"]) - a for a, (_, r) in zip(acc, mine)],
            ]
            ax.errorbar(
                [b for b, _ in mine],
                acc,
                yerr=err,
                fmt="none",
                ecolor=color,
                elinewidth=0.8,
                capsize=2,
            )
    ax.axhline(
        100 * teacher_accuracy,
        color="black",
        ls="--",
        lw=1,
        label=f"Teacher ({100 * teacher_accuracy:.2f}%)",
    )
    ax.axhspan(
        100 * teacher_accuracy - 1,
        100 * teacher_accuracy,
        color="0.85",
        alpha=0.5,
        lw=0,
        label="within 1 pp of the teacher",
    )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else "")
    )
    ax.set_xlabel("mean payload per image (bytes, log scale)")
    ax.set_ylabel("top-1 accuracy (%)")
    lows = [100 * float(r["accuracy"]) for r in rows]
    ax.set_ylim(max(min(lows) - 2, 0), 100 * teacher_accuracy + 1.5)
    ax.grid(True, which="both", alpha=0.3)
    # long data descriptions wrap, not clip
    ax.set_title("\n".join(textwrap.wrap(title, 95)), fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def matched_accuracy(
    rows: Sequence[dict], teacher_accuracy: float, targets_pp: Sequence[float] = (1.0, 2.0, 3.0)
) -> list[dict]:
    """HECS-B against each other codec: bytes ratio at teacher - x pp, at the top of the common
    accuracy range, and the BD-rate over that range."""
    cs = curves(rows)
    if CHAMPION not in cs:
        return []
    mine = cs[CHAMPION]
    out = []
    for codec, theirs in cs.items():
        if codec == CHAMPION:
            continue
        row: dict = {"baseline": codec}
        for pp in targets_pp:
            acc = teacher_accuracy - pp / 100
            ratio = compare.matched_ratio(mine, theirs, acc)
            row[f"hecsb_bytes_at_-{pp:g}pp"] = _r(compare.bytes_at(mine, acc))
            row[f"baseline_bytes_at_-{pp:g}pp"] = _r(compare.bytes_at(theirs, acc))
            row[f"ratio_at_-{pp:g}pp"] = _r(ratio, 3)
        rng = compare.overlap(mine, theirs)
        row["common_accuracy_range"] = (
            "" if rng is None else f"{100 * rng[0]:.2f}-{100 * rng[1]:.2f}%"
        )
        row["ratio_at_top_of_common_range"] = (
            _r(compare.matched_ratio(mine, theirs, rng[1]), 3) if rng else None
        )
        bd = compare.bd_rate(mine, theirs)
        row["bd_rate"] = _r(bd, 3)
        row["bd_ratio"] = _r(None if bd is None else 1 + bd, 3)
        row["mean_log_ratio"] = _r(compare.mean_log_ratio(mine, theirs), 3)
        out.append(row)
    return out


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), nd)


def _f(v: float | None, nd: int = 2, unit: str = "") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}{unit}"


def matched_markdown(matched: Sequence[dict]) -> str:
    lines = [
        "| baseline | HECS-B/baseline bytes at teacher -1 pp | at -2 pp | at -3 pp | common "
        "accuracy range | "
        "ratio at top of range | BD-rate (cubic fit) | mean log ratio |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for m in matched:

        def cell(pp: str) -> str:
            r = m[f"ratio_at_-{pp}pp"]
            return (
                "n/a"
                if r is None
                else f"{r:.3f} ({m[f'hecsb_bytes_at_-{pp}pp']:.1f} / "
                f"{m[f'baseline_bytes_at_-{pp}pp']:.1f} B)"
            )

        bd, mlr = m["bd_rate"], m.get("mean_log_ratio")
        lines.append(
            f"| {LABELS.get(m['baseline'], m['baseline'])} | {cell('1')} | {cell('2')} | "
            f"{cell('3')} | "
            f"{m['common_accuracy_range'] or 'none'} | "
            f"{_f(m['ratio_at_top_of_common_range'], 3)} | "
            f"{'n/a' if bd is None else f'{100 * bd:+.1f}%'} | "
            f"{'n/a' if mlr is None else f'{100 * mlr:+.1f}%'} |"
        )
    return "\n".join(lines)


def latency_markdown(rows: Sequence[LatencyRow], measured: bool) -> str:
    """Table 2 layout: one block per profile, one row per codec."""
    head = (
        "| Network / data rate | Codec (setting) | Payload B | Accuracy % | Transfer (ms) | "
        "Edge (ms) | "
        "Server (ms) | Total (ms) |"
        + (" Message B | Total - harness (ms) | Frames | Server queue (ms) |" if measured else "")
    )
    sep = "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|---:|" if measured else "")
    lines = [head, sep]
    for profile in PROFILES:
        first = True
        for r in [r for r in rows if r.profile == profile]:
            label = PROFILE_LABELS[profile] if first else ""
            first = False
            name = (
                "harness: null codec"
                if r.codec == "null"
                else f"{LABELS.get(r.codec, r.codec)} ({r.setting})"
            )
            acc = "-" if r.codec == "null" else f"{100 * r.accuracy:.2f}"
            line = (
                f"| {label} | {name} | {r.payload_bytes:.1f} | {acc} | {r.transfer_ms:.3f} | "
                f"{r.edge_ms:.3f} | {r.server_ms:.3f} | {r.total_ms:.3f} |"
            )
            lines.append(
                line
                + (
                    f" {_f(r.message_bytes, 1)} | {_f(r.above_floor_ms, 3)} | "
                    f"{r.frames} | "
                    f"{_f(r.queue_ms, 3)} |"
                    if measured
                    else ""
                )
            )
    return "\n".join(lines)


def machine_description() -> dict[str, str]:
    """CPU model, core count, OS, Python/torch versions, load average and the date (UTC)."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": str(torch.get_num_threads()),
        "cpu_convolutions": "oneDNN" if torch.backends.mkldnn.enabled else "native",
        "load_average_1_5_15": " ".join(f"{v:.2f}" for v in load),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def claims(
    rows: Sequence[dict],
    teacher_accuracy: float,
    operating: dict[str, dict],
    measured: Sequence[LatencyRow] | None,
    teacher_edge_ms: float | None = None,
    ratio_interval: dict | None = None,
) -> list[dict]:
    """The four claims of the issue, each with its figure, threshold and verdict (None = not
    measurable).

    ``teacher_edge_ms``: the whole teacher's time on the edge (preprocessing + network), timed in
    the same run; with it claim 2 also compares HECS-B's edge half with the teacher's.
    ``ratio_interval``: the paired-bootstrap 95% interval of claim 1's ratio
    (:func:`hecsb_ros.core.bench.intervals.matched_ratio_interval`); with it claim 1 holds only if
    the whole interval does.
    """
    cs = curves(rows)
    out = []
    # 1. bytes at matched accuracy vs SVB
    fig, note = None, "HECS-B or SVB missing"
    if CHAMPION in cs and "svb" in cs:
        target = teacher_accuracy - 0.01
        fig = compare.matched_ratio(cs[CHAMPION], cs["svb"], target)
        note = f"at teacher -1 pp ({100 * target:.2f}%)"
        if fig is None:
            rng = compare.overlap(cs[CHAMPION], cs["svb"])
            if rng is not None:
                fig = compare.matched_ratio(cs[CHAMPION], cs["svb"], rng[1])
                note = (
                    f"teacher -1 pp not reached by both; at the highest accuracy both reach "
                    f"({100 * rng[1]:.2f}%)"
                )
            else:
                note = "the accuracy ranges do not overlap"
        bd = compare.bd_rate(cs[CHAMPION], cs["svb"])
        if bd is not None:
            note += (
                f"; BD-rate (cubic fit) over the common range {100 * bd:+.1f}% "
                f"(ratio {1 + bd:.3f})"
            )
    holds = None if fig is None else fig <= 0.5
    interval = None
    if fig is not None and ratio_interval and ratio_interval.get("hi") is not None:
        interval = [ratio_interval["lo"], ratio_interval["hi"]]
        holds = ratio_interval["hi"] <= 0.5 and ratio_interval["undefined"] == 0
        where = (
            " (at the top of the common range in each round)"
            if ratio_interval.get("at") == "common_top"
            else ""
        )
        note += (
            f"; 95% paired-bootstrap interval{where} "
            f"{ratio_interval['lo']:.3f}-{ratio_interval['hi']:.3f}"
            + (
                f" ({ratio_interval['undefined']} rounds without a match)"
                if ratio_interval["undefined"]
                else ""
            )
        )
    out.append(
        {
            "claim": "HECS-B needs at most 0.5x the bytes of SVB at matched accuracy",
            "figure": fig,
            "threshold": "<= 0.5 (whole interval)",
            "holds": holds,
            "interval": interval,
            "note": note,
        }
    )
    # 2. edge time vs SVB
    fig, note = None, "HECS-B or SVB missing"
    if CHAMPION in operating and "svb" in operating:
        h, s = operating[CHAMPION], operating["svb"]
        fig = h["edge_ms"] / s["edge_ms"]
        note = (
            f"edge half at the operating points: HECS-B {h['edge_ms']:.3f} ms vs SVB "
            f"{s['edge_ms']:.3f} ms; "
            f"edge network alone {h['edge_network_ms']:.3f} vs {s['edge_network_ms']:.3f} ms "
            f"(ratio {h['edge_network_ms'] / s['edge_network_ms']:.3f})"
        )
        if h.get("edge_macs") and s.get("edge_macs"):
            note += (
                f"; edge multiply-accumulates {h['edge_macs'] / 1e6:.2f} M vs "
                f"{s['edge_macs'] / 1e6:.2f} M "
                f"(ratio {h['edge_macs'] / s['edge_macs']:.3f})"
            )
    out.append(
        {
            "claim": "HECS-B's edge half is at least 60% faster than SVB's",
            "figure": fig,
            "threshold": "<= 0.4 (time ratio)",
            "holds": None if fig is None else fig <= 0.4,
            "note": note,
        }
    )
    if teacher_edge_ms and CHAMPION in operating:
        h = operating[CHAMPION]
        out.append(
            {
                "claim": "HECS-B's edge half is at least 60% faster than the whole teacher on "
                "the edge",
                "figure": h["edge_ms"] / teacher_edge_ms,
                "threshold": "<= 0.4 (time ratio)",
                "holds": h["edge_ms"] / teacher_edge_ms <= 0.4,
                "note": f"HECS-B {h['edge_ms']:.3f} ms vs the teacher {teacher_edge_ms:.3f} "
                "ms (preprocessing "
                "and network, batch 1, interleaved in the same run)",
            }
        )
    # 3. best accuracy everywhere near the teacher
    fig, note, holds = None, "HECS-B missing", None
    if CHAMPION in cs:
        holds, violations = compare.best_everywhere(cs, CHAMPION, teacher_accuracy, 0.03)
        in_range, v2 = compare.best_everywhere(
            cs, CHAMPION, teacher_accuracy, 0.03, max_budget=max(b for b, _ in cs[CHAMPION])
        )
        fig = len(violations)
        worst = sorted(violations, key=lambda v: v["champion_accuracy"] - v["accuracy"])[:3]
        note = (
            "no payload size where another codec is more accurate"
            if holds
            else "; ".join(
                f"at {v['bytes']:.1f} B {LABELS.get(v['codec'], v['codec'])} "
                f"{100 * v['accuracy']:.2f}% > "
                f"HECS-B {100 * v['champion_accuracy']:.2f}%"
                for v in worst
            )
            + f" ({len(violations)} (size, codec) cases)"
        )
        note += f"; up to HECS-B's largest payload: {'holds' if in_range else f'{len(v2)} cases'}"
    out.append(
        {
            "claim": "HECS-B has the best accuracy at every payload size where any codec is "
            "within 3 pp of the "
            "teacher",
            "figure": fig,
            "threshold": "0 payload sizes where another codec is better",
            "holds": holds,
            "note": note,
        }
    )
    # 4. measured 4g total vs the best input codec
    fig, note = None, "not measured over ROS (run without --no-ros)"
    if measured:
        m4 = {r.codec: r for r in measured if r.profile == "4g"}
        inputs = [m4[c] for c in INPUT_CODECS if c in m4]
        if CHAMPION in m4 and inputs:
            best = min(inputs, key=lambda r: r.total_ms)
            classic = [m4[c] for c in CLASSIC_INPUT_CODECS if c in m4]
            h = m4[CHAMPION]
            fig = h.total_ms / best.total_ms
            note = (
                f"HECS-B {h.total_ms:.3f} ms vs best input codec {LABELS[best.codec]} "
                f"{best.total_ms:.3f} ms (capture->result medians)"
            )
            if classic:
                bc = min(classic, key=lambda r: r.total_ms)
                note += (
                    f"; vs best classic image codec {LABELS[bc.codec]}: "
                    f"ratio {h.total_ms / bc.total_ms:.3f}"
                )
            # link + DDS hops: what no codec can remove
            floor = h.total_ms - h.edge_ms - h.server_ms
            note += (
                "; HECS-B's total without its edge and server compute (link + DDS hops) is "
                f"{floor:.3f} ms, "
                f"{floor / best.total_ms:.2f}x the best input codec's total"
            )
    out.append(
        {
            "claim": "Under 4g, HECS-B's measured total latency is at most 0.5x the best "
            "input codec's",
            "figure": fig,
            "threshold": "<= 0.5",
            "holds": None if fig is None else fig <= 0.5,
            "note": note,
        }
    )
    return out


def _figure_text(fig) -> str:
    return "n/a" if fig is None else (f"{fig:.3f}" if isinstance(fig, float) else str(fig))


def claims_markdown(items: Sequence[dict]) -> str:
    lines = ["| claim | measured | threshold | holds | detail |", "|---|---:|---|---|---|"]
    for c in items:
        figs = _figure_text(c["figure"])
        verdict = "not measured" if c["holds"] is None else ("**yes**" if c["holds"] else "**no**")
        lines.append(f"| {c['claim']} | {figs} | {c['threshold']} | {verdict} | {c['note']} |")
    return "\n".join(lines)


def claims_summary_markdown(items: Sequence[dict]) -> str:
    """The claims as a short table (figure, its 95% interval where there is one, threshold,
    verdict)."""
    lines = ["| claim | measured | threshold | holds |", "|---|---:|---|---|"]
    for c in items:
        figs = _figure_text(c["figure"])
        if c.get("interval"):
            figs += f" (95%: {c['interval'][0]:.3f}-{c['interval'][1]:.3f})"
        verdict = (
            f"n/a ({c['note']})" if c["holds"] is None else ("yes" if c["holds"] else "**no**")
        )
        lines.append(f"| {c['claim']} | {figs} | {c['threshold']} | {verdict} |")
    return "\n".join(lines)
