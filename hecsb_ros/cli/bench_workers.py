"""``bench --eval-workers N``: the rate points' accuracy measured in N spawned processes.

Each process loads the benchmark's frames once (they are not sent) and evaluates whole rate points,
one frame at a time as :func:`hecsb_ros.core.bench.rate_accuracy.evaluate_point` does in one
process; only which codec runs when changes, so the numbers are the same. Timings stay in the main
process.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

_WORKER: dict = {}


def _worker_init(
    load_frames: Callable,
    args: argparse.Namespace,
    reference_top: np.ndarray | None,
    threads: int,
    pick: tuple | None,
) -> None:
    """A rate-point worker process: the benchmark's frames (``load_frames(args)``), the held-out
    frames the operating points are chosen on (``pick``: frames, labels, encoding), its torch
    threads."""
    from hecsb_ros.core.codecs import CodecSettings
    from hecsb_ros.core.codecs.base import configure_torch

    configure_torch(CodecSettings(threads=threads))
    frames, encoding, labels, _, teacher_setting = load_frames(args)
    _WORKER.update(
        frames=frames,
        encoding=encoding,
        labels=labels,
        teacher=teacher_setting,
        reference=reference_top,
        threads=threads,
        pick=pick,
    )


def _worker_point(p):
    """Evaluate one rate point in a worker: (key, PointResult, held-out (accuracy, bytes) or None,
    seconds)."""
    import torch

    from hecsb_ros.core.bench import rate_accuracy as ra

    w = _WORKER
    t0 = time.time()
    codec = ra.load_codecs([p], w["threads"], w["teacher"])[p.key]
    torch.set_num_threads(w["threads"])  # loading sets the codec's threads
    r = ra.evaluate_point(codec, p, w["frames"], w["labels"], False, w["encoding"], w["reference"])
    held_out = None
    if w["pick"] is not None:
        frames, labels, encoding = w["pick"]
        q = ra.evaluate_point(codec, p, frames, labels, False, encoding)
        held_out = (q.accuracy, q.bytes_mean)
    return p.key, r, held_out, time.time() - t0


def evaluate_in_workers(
    args: argparse.Namespace,
    points,
    reference_top: np.ndarray | None,
    pick: tuple | None,
    load_frames: Callable,
    on_point: Callable,
) -> tuple[dict, dict]:
    """Every point of ``points`` (and on the held-out ``pick`` frames) in ``--eval-workers``
    processes, each loading the frames with ``load_frames(args)`` (a module-level function: it is
    sent by name); ``on_point(point, result, seconds)`` as each point finishes.

    Returns the results keyed by point, in the points' order, and the held-out ``(accuracy,
    bytes)`` per point (empty without ``pick``)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (args.eval_threads or args.threads) // args.eval_workers)
    by_key = {p.key: p for p in points}
    out, held_out = {}, {}
    with ProcessPoolExecutor(
        args.eval_workers,
        mp_context=mp.get_context("spawn"),
        initializer=_worker_init,
        initargs=(load_frames, args, reference_top, threads, pick),
    ) as pool:
        for fut in as_completed([pool.submit(_worker_point, p) for p in points]):
            key, r, picked, seconds = fut.result()
            out[key] = r
            if picked is not None:
                held_out[key] = picked
            on_point(by_key[key], r, seconds)
    return {p.key: out[p.key] for p in points}, held_out
