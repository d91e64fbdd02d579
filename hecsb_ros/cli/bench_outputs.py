"""The benchmark's outputs: CSV, plot, Table 2, claims and README of its folder, all from the
results document that ``hecsb_ros.cli.bench`` measures. Nothing outside the output folder is
written."""

from __future__ import annotations

import argparse
import json


def operating_rule(doc: dict) -> str:
    """How the results' operating points were chosen, in words."""
    if doc.get("pick_teacher_accuracy") is not None and doc.get("pick_list"):
        return (
            "the smallest payload within 1 pp of the teacher's agreement with itself (100%), "
            "else its most "
            "accurate setting, judged by top-1 agreement with the uncompressed teacher on "
            f"{doc['pick_images']} "
            f"held-out training photos that no learned codec trained on ({doc['pick_list']}), "
            "not on the "
            "test photos."
        )
    if doc.get("pick_teacher_accuracy") is not None:
        return (
            "the smallest payload within 1 pp of the teacher, else its most accurate "
            "setting, judged on "
            f"{doc['pick_images']} Fashion-MNIST training images that no learned codec "
            "trained on (teacher "
            f"{100 * doc['pick_teacher_accuracy']:.2f}% there), not on the test images."
        )
    return (
        "the smallest payload within 1 pp of the teacher "
        f"({100 * doc['teacher_accuracy']:.2f}%), else its most "
        "accurate setting, judged on the test images themselves (no held-out images in this "
        "run)."
    )


def write_outputs(doc: dict, args: argparse.Namespace) -> None:
    """CSV, plot, tables, claims and the README of ``args.out_dir`` from the results document."""
    from hecsb_ros.core.bench import report
    from hecsb_ros.core.bench.latency import LatencyRow

    out = args.out_dir
    rows, teacher_acc = doc["rows"], doc["teacher_accuracy"]
    report.write_csv(rows, out / "rate_accuracy.csv")
    data = doc.get("data", f"the first {doc['test_images']} Fashion-MNIST test images")
    title = (
        f"{data[0].upper() + data[1:]}: top-1 accuracy vs mean payload "
        f"(teacher {100 * teacher_acc:.2f}%)"
    )
    report.plot(rows, teacher_acc, out / "fig8_rate_accuracy.png", title)
    matched = report.matched_accuracy(rows, teacher_acc)
    if matched:
        report.write_csv(matched, out / "matched_accuracy.csv")
    computed = [LatencyRow(**r) for r in doc["latency_computed"]]
    measured = [LatencyRow(**r) for r in doc.get("latency_ros", [])]
    report.write_csv([r.as_dict() for r in computed], out / "latency_computed.csv")
    if measured:
        report.write_csv([r.as_dict() for r in measured], out / "latency_ros.csv")
    claims = report.claims(
        rows,
        teacher_acc,
        doc["operating"],
        measured or None,
        doc.get("teacher_edge_ms"),
        doc.get("claim1_ratio_interval"),
    )
    doc["claims"] = claims
    ros_note = (
        f"median over {args.ros_frames} frames per cell at {args.ros_rate_hz:g} Hz"
        if measured
        else "not run (--no-ros / --quick)"
    )
    table2 = "\n".join(
        [
            "# Table 2: transfer, edge, server and total time per codec and link",
            "",
            f"Operating point of each codec: {operating_rule(doc)} Times in ms.",
            "",
            "## Computed from the measured bytes and times",
            "",
            "Transfer = 8 x mean payload bytes / data rate (idle link, no propagation delay); "
            "edge and server = "
            f"medians of {doc['timing_rounds']} interleaved frames, {doc['threads']} torch "
            "thread, "
            "batch 1; "
            "total = edge + transfer + server.",
            "",
            report.latency_markdown(computed, measured=False),
            "",
            "## Measured through the ROS 2 pipeline with the link emulator",
            "",
            "Separate processes over DDS (camera source -> edge -> link emulator -> server); "
            f"{ros_note}. "
            "Transfer = edge send -> server receive (emulated link + DDS); total = capture -> "
            "result "
            "latency "
            "(also holds the camera -> edge and server -> monitor DDS hops). Payload and accuracy "
            "over the "
            "frames of the run.",
            "",
            report.latency_markdown(measured, measured=True)
            if measured
            else "(not measured in this run)",
            "",
        ]
    )
    (out / "table2_latency.md").write_text(table2)
    (out / "claims.md").write_text(claims_page(claims, doc))
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=float) + "\n")
    (out / "README.md").write_text(readme(doc, matched, claims, computed, measured, args))


def claims_page(claims: list[dict], doc: dict) -> str:
    """``claims.md``: the claims as a short table (what a summary quotes), then with every
    detail."""
    from hecsb_ros.core.bench import report

    return (
        f"# The issue's four claims\n\nRun of {doc['machine']['date_utc']}.\n\n"
        + report.claims_summary_markdown(claims)
        + "\n\n## Details\n\n"
        + report.claims_markdown(claims)
        + "\n"
    )


def readme(doc: dict, matched: list[dict], claims: list[dict], computed, measured, args) -> str:
    from hecsb_ros.core.bench import report
    from hecsb_ros.core.bench.points import LABELS

    m = doc["machine"]
    teacher_acc = doc["teacher_accuracy"]
    data = doc.get("data", f"the first {doc['test_images']} Fashion-MNIST test images")
    lines = [
        "# Benchmarks: rate-accuracy (Fig. 8) and latency (Table 2)",
        "",
        f"Generated by `{doc['command']}` on {m['date_utc']} in {doc['run_minutes']:.1f} min "
        f"(ROS runs: {doc.get('ros_minutes', 0):.1f} min"
        + (f", by `{doc['command_ros']}`" if doc.get("command_ros") else "")
        + ")."
        + (
            " Claim 1's interval recomputed from a fresh, deterministic evaluation of the same "
            "HECS-B and SVB "
            f"levels by `{doc['command_intervals']}`."
            if doc.get("command_intervals")
            else ""
        ),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (shared with other jobs; load average at the "
        "start "
        f"{m['load_average_1_5_15']}), {m['os']}, Python {m['python']}, torch {m['torch']}, "
        f"{doc['threads']} torch thread for all timings, {m.get('cpu_convolutions', 'default')} "
        "CPU convolutions "
        "(the codecs' default; see backend/README.md).",
        "",
        f"Data: {data}; "
        f"teacher `{doc.get('teacher', 'fmnist_resnet')}` (no compression) "
        f"{100 * teacher_acc:.2f}% top-1"
        + (
            f", top-5 {100 * doc['teacher_top5']:.2f}%"
            if doc.get("teacher_top5") is not None
            else ""
        )
        + ". Sizes are `len(payload)` (message bytes: the serialized `CompressedLatent`); "
        "accuracy comes from the "
        "logits the server half computes from those bytes (top-1 and top-5 over the labelled "
        "frames; agreement: "
        "top-1 equal to the uncompressed teacher's on the same frame, over all frames).",
        "",
        "![rate-accuracy](fig8_rate_accuracy.png)",
        "",
        "## Operating points",
        "",
        f"Per codec: {operating_rule(doc)} "
        "Edge MACs: multiply-accumulates of the edge half's network for one image "
        "(machine-independent). Edge "
        "ms: image in -> payload out (preprocessing, network and entropy coding); server ms: "
        "payload in -> logits "
        "out; the network-only and coder-only parts are in rate_accuracy.csv. Message B: the "
        "serialized "
        "`CompressedLatent` that carries the payload (what the emulated link is charged with). "
        "Intervals: paired "
        f"bootstrap over the images ({doc.get('bootstrap_rounds', 0)} rounds).",
        "",
        "| codec | setting | payload B | message B | accuracy % | delta pp (95% interval) | edge "
        "ms | server ms | "
        "edge MACs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for codec, r in doc["operating"].items():
        macs = r.get("edge_macs", 0)
        ci = f" ({r['delta_pp_lo']:+.2f} to {r['delta_pp_hi']:+.2f})" if "delta_pp_lo" in r else ""
        msg = f"{r['message_bytes_mean']:.1f}" if "message_bytes_mean" in r else "-"
        lines.append(
            f"| {LABELS[codec]} | {r['setting']} | {r['bytes_mean']:.1f} | {msg} | "
            f"{100 * r['accuracy']:.2f} | "
            f"{r['delta_pp']:+.2f}{ci} | {r['edge_ms']:.3f} | {r['server_ms']:.3f} | "
            f"{f'{macs / 1e6:.2f} M' if macs else '-'} |"
        )
    lines += [
        "",
        "## HECS-B bytes against each baseline at matched accuracy",
        "",
        "Ratio = HECS-B bytes / baseline bytes at the same accuracy, interpolated "
        "log-linearly on each "
        "curve's Pareto front (n/a: a curve does not reach that accuracy). BD-rate: mean "
        "log ratio over "
        "the common accuracy range.",
        "",
        report.matched_markdown(matched) if matched else "(no HECS-B levels)",
        "",
        "## Claims",
        "",
        report.claims_markdown(claims),
        "",
        "## Latency (Table 2)",
        "",
        "See [table2_latency.md](table2_latency.md) for both tables; computed:",
        "",
        report.latency_markdown(computed, measured=False),
        "",
    ]
    if measured:
        lines += ["Measured over ROS 2:", "", report.latency_markdown(measured, measured=True), ""]
    lines += [
        "## Files",
        "",
        "- `rate_accuracy.csv`: every codec and setting (bytes mean/p50/p95/max, accuracy, "
        "edge and server "
        "ms, edge network and entropy-coding ms, model id)",
        "- `fig8_rate_accuracy.png`, `matched_accuracy.csv`, `latency_computed.csv`, "
        "`latency_ros.csv`, "
        "`table2_latency.md`, `claims.md`, `results.json` (everything above, "
        "machine-readable)",
        "",
    ]
    return "\n".join(lines)
