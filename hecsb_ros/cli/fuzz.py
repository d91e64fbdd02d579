"""Fuzz the server and edge message handlers with malformed and hostile messages.

Runs the nodes' own subscription callbacks in-process with hypothesis-generated cases
(``--server``, ``--edge``, ``--results`` messages each), then publishes ``--dds`` cases over DDS to
a running server node. Reports crashes (exceptions escaping a callback), messages neither served
nor counted, outcomes per case kind and resident memory; writes ``<name>.md`` and ``<name>.json``.

    python -m hecsb_ros.cli.fuzz --server 10000 --edge 10000 --results 2000 --dds 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hecsb_ros.reliability.fuzz import (
    FuzzReport,
    fuzz_edge,
    fuzz_edge_results,
    fuzz_server,
    fuzz_server_over_dds,
    replay_memory,
    rss_mb,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="hecsb reliability fuzz",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument(
        "--server", type=int, default=10000, help="Malformed latents fed to the server callback"
    )
    ap.add_argument(
        "--edge", type=int, default=10000, help="Malformed images fed to the edge callback"
    )
    ap.add_argument(
        "--results",
        type=int,
        default=2000,
        help="Hostile results fed to the edge's result callback",
    )
    ap.add_argument(
        "--dds",
        type=int,
        default=1000,
        help="Malformed latents published over DDS to a server node",
    )
    ap.add_argument(
        "--replay",
        type=int,
        default=20,
        help="Times 500 generated latents are fed again to measure the server's own memory",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--codec", default="png", help="Codec of edge and server (png cases are the most specific)"
    )
    ap.add_argument(
        "--checkpoint",
        default="random",
        help="Classifier checkpoint of edge and server; 'random' = untrained weights (same "
        "compute)",
    )
    ap.add_argument("--domain-id", type=int, default=215)
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/reliability"))
    ap.add_argument("--name", default="fuzz")
    return ap.parse_args(argv)


def _checkpoint(arg: str) -> str:
    if arg != "random":
        return arg
    import torch

    from hecsb_ros.core.teachers import build_model, fmnist_spec, save_checkpoint

    torch.manual_seed(0)
    spec = fmnist_spec()
    path = Path(tempfile.mkdtemp(prefix="hecsb_fuzz_")) / "random_fmnist.safetensors"
    save_checkpoint(path, build_model(spec).state_dict(), spec)
    return str(path)


def run(args: argparse.Namespace) -> tuple[list[FuzzReport], dict[str, Any]]:
    import rclpy
    from rclpy.parameter import Parameter

    from hecsb_ros.nodes.edge import EdgeNode
    from hecsb_ros.nodes.server import ServerNode

    ckpt = _checkpoint(args.checkpoint)
    rclpy.init(domain_id=args.domain_id)
    reports = []
    try:
        params = [Parameter("codec", value=args.codec), Parameter("checkpoint", value=ckpt)]
        server = ServerNode(parameter_overrides=params)
        edge = EdgeNode(
            parameter_overrides=params + [Parameter("max_image_pixels", value=1 << 22)]
        )
        for label, fn, node, n, seed in (
            ("server", fuzz_server, server, args.server, args.seed),
            ("edge", fuzz_edge, edge, args.edge, args.seed + 1),
            ("results", fuzz_edge_results, edge, args.results, args.seed + 2),
            ("dds", fuzz_server_over_dds, server, args.dds, args.seed + 3),
        ):
            if label == "dds":  # the edge publishes on 'latent' too: only the fuzzer may, now
                edge.destroy_node()
                edge = None
            if n <= 0:
                continue
            print(f"[fuzz] {label}: {n} messages ...", file=sys.stderr, flush=True)
            report = fn(node, n, rng_seed=seed)
            d = report.to_dict()
            print(
                f"[fuzz] {report.target}: {report.messages} messages, {d['crashes']} crashes, "
                f"{d['uncounted']} uncounted, RSS {d['rss_start_mb']} -> {d['rss_end_mb']} MiB "
                f"(peak {d['rss_peak_mb']}), {d['seconds']} s",
                file=sys.stderr,
                flush=True,
            )
            reports.append(report)
        replay: dict[str, Any] = {}
        if args.replay > 0:
            print(f"[fuzz] replay: 500 latents x {args.replay} ...", file=sys.stderr, flush=True)
            replay = replay_memory(server, 500, args.replay, args.seed + 4)
            print(f"[fuzz] replay: {json.dumps(replay)}", file=sys.stderr, flush=True)
        if edge is not None:
            edge.destroy_node()
        server.destroy_node()
    finally:
        rclpy.try_shutdown()
    return reports, replay


def markdown(
    reports: list[FuzzReport], argv: list[str], replay: dict[str, Any], codec: str = "png"
) -> str:
    total = sum(r.messages for r in reports)
    crashes = sum(len(r.crashes) for r in reports)
    uncounted = sum(r.uncounted + r.outcomes["not_received"] for r in reports)
    lines = [
        "# Fuzzing the node callbacks",
        "",
        f"Command: `python -m hecsb_ros.cli.fuzz {' '.join(argv)}`  ",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, recorded "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Codec `{codec}`; hypothesis "
        "generates the cases "
        "(hecsb_ros/reliability/fuzz.py), the nodes' own subscription callbacks handle them.",
        "",
        f"**{total} messages, {crashes} crashes, {uncounted} neither served nor counted.**",
        "",
        "| target | messages | crashes | uncounted | RSS start -> peak -> end (MiB) | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in reports:
        d = r.to_dict()
        lines.append(
            f"| {r.target} | {r.messages} | {d['crashes']} | {d['uncounted']} | "
            f"{d['rss_start_mb']} -> {d['rss_peak_mb']} -> {d['rss_end_mb']} | {d['seconds']} |"
        )
    lines += [
        "",
        "RSS of the fuzzing process includes hypothesis' own bookkeeping, which grows with every "
        "example. The server callback's own memory, measured by feeding the same generated "
        "latents "
        "again and again:",
        "",
    ]
    if replay:
        lines.append(
            f"- {replay['cases']} latents x {replay['repeats']} = {replay['messages']} messages: "
            "RSS "
            f"{replay['rss_before_mb']:.1f} MiB before, {replay['rss_after_first_pass_mb']:.1f} "
            "MiB after the "
            f"first pass (warm-up), {replay['rss_end_mb']:.1f} MiB at the end: "
            f"**{replay['growth_after_first_pass_mb']:+.1f} MiB after warm-up**."
        )
    for r in reports:
        lines += [
            "",
            f"## {r.target}: outcome per case kind",
            "",
            "| case kind | count | outcomes |",
            "| --- | --- | --- |",
        ]
        for kind, n in sorted(r.by_kind.items()):
            outs = ", ".join(
                f"{o} {c}" for (k, o), c in sorted(r.kind_outcomes.items()) if k == kind
            )
            lines.append(f"| {kind} | {n} | {outs} |")
    lines += [
        "",
        "Outcomes: `served` = the node produced its output (a result, a latent, a statistics "
        "record); "
        "any other outcome is the drop reason the node counted in LinkStats "
        "(hecsb_ros/core/payload.py "
        "REASONS). `not_received` would be a message published over DDS that never reached the "
        "callback.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    t0 = time.monotonic()
    rss0 = rss_mb()
    reports, replay = run(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.name}.md").write_text(markdown(reports, argv, replay, args.codec))
    summary: dict[str, Any] = {
        "args": vars(args) | {"out_dir": str(args.out_dir)},
        "seconds": time.monotonic() - t0,
        "process_rss_start_mb": rss0,
        "reports": [r.to_dict() for r in reports],
        "replay": replay,
    }
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(summary, indent=1, default=str))
    bad = sum(len(r.crashes) + r.uncounted + r.outcomes["not_received"] for r in reports)
    print(f"[fuzz] wrote {args.out_dir / (args.name + '.md')}; {bad} problems", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
