"""What the benchmark commands share: a monitored pipeline on a DDS domain of its own, the machine
line of a report, number formatting and the CSV / Markdown table writers. Their measurement code
(timing, process CPU time, percentiles) is in :mod:`hecsb_ros.core.bench.timing`."""

from __future__ import annotations

import csv
import math
import os
import platform
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence


@contextmanager
def monitored_pipeline(
    domain_id: int,
    log_dir: Path,
    monitor_name: str,
    monitor_robots: tuple[str, ...] = (),
    **pipeline_kwargs: Any,
) -> Iterator[tuple[Any, Any]]:
    """``(pipeline, monitor)`` on their own DDS domain: a :class:`~hecsb_ros.monitor.Monitor` in
    this process (driving the lifecycle; ``monitor_robots``: a fleet's robots whose results it
    records) and a :class:`~hecsb_ros.runner.Pipeline` (``pipeline_kwargs``, e.g. ``robots``) that
    is not started yet; both stopped and the context shut down on exit."""
    import rclpy

    from hecsb_ros.monitor import Monitor
    from hecsb_ros.runner import Pipeline

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    monitor = Monitor(monitor_name, context=context, robots=monitor_robots)
    pipe = Pipeline(domain_id, log_dir, monitor=monitor, **pipeline_kwargs)
    try:
        yield pipe, monitor
    finally:
        pipe.stop()
        monitor.destroy()
        rclpy.try_shutdown(context=context)


def local_domain(domain_id: int | None) -> int:
    """The first DDS domain of a benchmark's processes: ``domain_id``, else one in 120-180 drawn
    from this process's id; discovery stays on this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE``)
    unless the environment says otherwise."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return domain_id if domain_id is not None else random.Random(os.getpid()).randint(120, 180)


def machine() -> str:
    """This machine in a report's words: host, platform, Python, CPUs."""
    return (
        f"{platform.node()}, {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )


def fmt(v: Any) -> str:
    """A table cell: floats with one decimal, NaN as n/a."""
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.1f}"
    return str(v)


def write_csv(rows: list[dict], fields: Sequence[str], path: Path, digits: int = 3) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: (f"{row[k]:.{digits}f}" if isinstance(row[k], float) else row[k])
                    for k in fields
                }
            )


def markdown_table(
    rows: list[dict],
    cols: Sequence[tuple[str, str]],
    cell: Callable[[str, Any], str] = lambda key, value: fmt(value),
) -> list[str]:
    """Header, rule and one line per row of ``(key, heading)`` columns; ``cell(key, value)``
    formats."""
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    return lines + ["| " + " | ".join(cell(k, row[k]) for k, _ in cols) + " |" for row in rows]
