"""The process runner: the node set as separate processes (the monitor that watches them:
:mod:`hecsb_ros.monitor`).

The one way the project starts its nodes without ``ros2 launch``: the demo (``run_demo``), the
fault, load and soak tools and the multi-process tests all use it. :class:`Pipeline` starts the
nodes described by :func:`hecsb_ros.graph.split_inference_nodes` (``python -m <module> --ros-args
...``, one parameter file per run), brings the managed (lifecycle) ones to active in
:data:`~hecsb_ros.graph.START_ORDER` through their standard ``change_state`` / ``get_state``
services (through a :class:`~hecsb_ros.monitor.Monitor`) before the camera source starts, can kill
and restart any node, and reads their resident memory and logs.
"""

from __future__ import annotations

import atexit
import fcntl
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from hecsb_ros.graph import START_ORDER, NodeSpec, dds_environment, split_inference_nodes
from hecsb_ros.monitor import Monitor

ROOT = Path(__file__).resolve().parents[1]


def ros_env(domain_id: int | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: discovery kept on this machine and the shipped Fast DDS
    profile (large camera frames between processes; :func:`hecsb_ros.graph.fastdds_profile`),
    unless the caller's environment says otherwise (``FASTDDS_DEFAULT_PROFILES_FILE=`` empty: no
    profile; both Fast DDS variable names are set, see :func:`hecsb_ros.graph.dds_environment`),
    ``domain_id`` when given, unbuffered output."""
    env = dds_environment(os.environ if base is None else base)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def shm_segments(pid: int) -> set[Path]:
    """Fast DDS shared-memory segments (``/dev/shm/fastdds_<id>``; Fast DDS 2.x of Jazzy:
    ``fastrtps_<id>``) a process maps: its own and those of the writers it reads from (Linux; empty
    when the process is gone)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    out = set()
    for line in maps.splitlines():
        parts = line.split(maxsplit=5)
        name = parts[5].strip() if len(parts) == 6 else ""
        for prefix in ("/dev/shm/fastdds_", "/dev/shm/fastrtps_"):
            if (
                name.startswith(prefix)
                and not name.startswith(prefix + "port")
                and not name.endswith("_el")
            ):
                out.add(Path(name))
    return out


def remove_stale_segments(segments: set[Path]) -> list[Path]:
    """Remove those ``segments`` whose owner is gone: nobody holds the lock on ``<segment>_el``.

    A process killed without clean-up (SIGKILL) leaves its segment behind, with the profile 32 MiB
    of RAM in ``/dev/shm`` each; Fast DDS does not reclaim it. A live owner holds the lock, so its
    segments are never touched.
    """
    removed = []
    for seg in segments:
        lock = seg.with_name(seg.name + "_el")
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # the owner is alive
            os.close(fd)
            continue
        try:
            seg.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
            removed.append(seg)
        finally:
            os.close(fd)
    return removed


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of a process (default: this one) in MiB, from /proc (Linux)."""
    with open(f"/proc/{pid or os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


class Pipeline:
    """Node processes of one split-inference graph on one DDS domain.

    Args:
        domain_id: ``ROS_DOMAIN_ID`` of every process (None: the caller's).
        log_dir: where each node's output goes (``<node name>.log``, a fleet's robots
            ``<robot>_<node name>.log``; appended across restarts).
        params: extra parameters per node role (``camera_source``, ``edge``, ``link_emulator``,
            ``server``: in a fleet every robot's) or per key (``robot1/edge``), applied after the
            graph's own.
        params_files: the user's YAML parameter files, given to every node before the run's own
            (so the graph's values and ``params`` win).
        env: base environment of the processes (default: this process's). node_env: environment per
        node role over ``env``; a value None removes the variable. The graph's
            own (``NodeSpec.env``, e.g. the edge's malloc settings) applies where ``env`` has none.
        monitor: the :class:`Monitor` that drives the lifecycle transitions (and whose result
            subscription must be matched before the camera starts); None: the pipeline makes its
            own lifecycle client node on the same domain when it first needs one.
        **graph_args: arguments of :func:`split_inference_nodes` (codec, profile, rate_hz,
        lifecycle, ...).
    """

    def __init__(
        self,
        domain_id: int | None,
        log_dir: Path,
        params: dict[str, dict[str, Any]] | None = None,
        params_files: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        node_env: dict[str, dict[str, str | None]] | None = None,
        monitor: "Monitor | None" = None,
        **graph_args: str,
    ) -> None:
        self.env = ros_env(domain_id, env)
        self.node_env = dict(node_env or {})
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.specs: dict[str, NodeSpec] = {s.key: s for s in split_inference_nodes(**graph_args)}
        # Keys: node names; a fleet's robots by their full name (/robot1/hecsb_edge). ``params``
        # per role (every robot's edge) or per key (robot1/edge).
        values = {
            (f"/{s.path}" if s.namespace else s.name): {
                "ros__parameters": {
                    **s.parameters,
                    **(params or {}).get(s.role, {}),
                    **(params or {}).get(s.key, {}),
                }
            }
            for s in self.specs.values()
        }
        self._params_files = [str(Path(f).resolve()) for f in params_files] + [
            str(self.log_dir / "params.yaml")
        ]
        Path(self._params_files[-1]).write_text(yaml.safe_dump(values))
        self.procs: dict[str, subprocess.Popen] = {}
        self.started_at: dict[str, float] = {}
        self.restarts: dict[str, int] = {k: 0 for k in self.specs}
        self.monitor = monitor
        self._own_manager: tuple[Any, Monitor] | None = None

    def command(self, key: str) -> list[str]:
        """``python -m <module> --ros-args ...`` of one node."""
        return node_command(self.specs[key], self._params_files)

    def start(self, *keys: str, timeout: float = 300.0) -> None:
        """Start the given roles (all when none given) in :data:`START_ORDER`: every process but
        the camera source's at once, then each managed node configured and activated in turn
        (server, then edge; a failed transition raises RuntimeError with the node's reason), then
        the camera source once the chain is active and discovered."""
        wanted = keys or tuple(self.specs)
        rank = {role: i for i, role in enumerate(START_ORDER)}
        # stable: robots in order
        order = sorted(wanted, key=lambda k: rank.get(self.specs[k].role, len(rank)))
        early = [k for k in order if self.specs[k].role != "camera_source"]
        cameras = [k for k in order if self.specs[k].role == "camera_source"]
        for key in early:
            self._spawn(key)
        for key in early:
            if self.specs[key].managed:
                self.bring_up(key, timeout)
        if cameras:
            if any(s.managed for s in self.specs.values()):
                self._wait_for_chain(min(timeout, 30.0))
            for key in cameras:
                self._spawn(key)

    def _spawn(self, key: str) -> None:
        if key in self.procs and self.procs[key].poll() is None:
            raise RuntimeError(f"{key} is already running")
        log = self.log_path(key).open("a")
        env = {**self.specs[key].env, **self.env}
        spec = self.specs[key]
        for name, value in {
            **self.node_env.get(spec.role, {}),
            **self.node_env.get(key, {}),
        }.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.procs[key] = subprocess.Popen(
            self.command(key), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        self.started_at[key] = time.monotonic()

    def manager(self) -> "Monitor":
        """The node that drives lifecycle transitions: ``monitor``, else the pipeline's own."""
        if self.monitor is not None:
            return self.monitor
        if self._own_manager is None:
            import rclpy

            context = rclpy.Context()
            domain = self.env.get("ROS_DOMAIN_ID")
            rclpy.init(context=context, **({"domain_id": int(domain)} if domain else {}))
            self._own_manager = (
                context,
                Monitor(f"hecsb_runner_{os.getpid()}", context=context, observe=False),
            )
            atexit.register(self._close_manager)  # also when the caller never calls stop()
        return self._own_manager[1]

    def _close_manager(self) -> None:
        if self._own_manager is not None:
            import rclpy

            context, manager = self._own_manager
            self._own_manager = None
            manager.destroy()
            rclpy.try_shutdown(context=context)

    def bring_up(self, key: str, timeout: float = 300.0) -> None:
        """Configure, then activate the managed node ``key`` through its lifecycle services.

        Raises RuntimeError when its process exits or a transition fails (the message carries the
        node's reason, e.g. "configure failed: unknown checkpoint ..."), TimeoutError when its
        services do not appear."""
        name = self.specs[key].path
        manager = self.manager()
        alive = lambda: self.procs[key].poll() is None  # noqa: E731
        if not manager.wait_for_lifecycle(name, timeout, alive):
            self.check()
            raise TimeoutError(
                f"the lifecycle services of {name} did not appear within {timeout:.0f} s"
            )
        for transition in ("configure", "activate"):
            if not manager.change_state(name, transition, timeout, alive):
                self.check()
                state = manager.query_lifecycle_state(name, 10.0) or "not answering"
                raise RuntimeError(
                    f"{name}: {transition} failed, the node is {state}: {self.failure_reason(key)}"
                )

    def failure_reason(self, key: str) -> str:
        """The last "... failed: reason" line of the node's log (what a failed transition
        logged)."""
        lines = [ln for ln in self.log_tail(key, 20000).splitlines() if "failed: " in ln]
        return lines[-1].split("]: ", 1)[-1] if lines else "(no reason in the log)"

    def _wait_for_chain(self, timeout: float) -> None:
        """Wait (bounded) until the topics from the edge on have a publisher and a subscriber in
        this process's view of the graph and ``monitor``'s result subscription is matched:
        discovery between the nodes is then done, so the camera's first frames are not published
        into it."""
        manager = self.manager()
        robots = sorted(
            {s.namespace for s in self.specs.values() if s.role == "camera_source"}
        ) or [""]
        link = any(s.role == "link_emulator" for s in self.specs.values())
        topics = [
            f"/{r}/{t}" if r else t
            for r in robots
            for t in ["latent", "classification"] + (["latent_shaped"] if link else [])
        ]
        monitor = self.monitor

        def ready() -> bool:
            self.check()
            matched = monitor is None or monitor.results_matched()
            return matched and all(
                manager.node.count_publishers(t) > 0 and manager.node.count_subscribers(t) > 0
                for t in topics
            )

        manager.spin_until(ready, timeout)

    def kill(self, key: str, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Send ``sig`` to one node (default SIGKILL: no clean-up) and wait until it is gone; then
        remove the shared-memory segments it left behind (:func:`remove_stale_segments`)."""
        proc = self.procs[key]
        if proc.poll() is None:
            segments = shm_segments(proc.pid)
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            remove_stale_segments(segments)

    def restart(self, key: str) -> None:
        self.kill(key)
        self.restarts[key] += 1
        self.start(key)

    def alive(self) -> dict[str, bool]:
        return {k: p.poll() is None for k, p in self.procs.items()}

    def pid(self, key: str) -> int:
        return self.procs[key].pid

    def rss(self) -> dict[str, float]:
        """Resident memory of each running node in MiB."""
        out = {}
        for key, proc in self.procs.items():
            try:
                out[key] = rss_mb(proc.pid) if proc.poll() is None else math.nan
            except OSError:
                out[key] = math.nan
        return out

    def log_path(self, key: str) -> Path:
        """``<node name>.log`` in ``log_dir`` (a fleet's robots: ``<robot>_<node name>.log``)."""
        spec = self.specs[key]
        return self.log_dir / (
            f"{spec.namespace}_{spec.name}.log" if spec.namespace else f"{spec.name}.log"
        )

    def log_tail(self, key: str, chars: int = 2000) -> str:
        path = self.log_path(key)
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def check(self) -> None:
        """RuntimeError with the node's last output when a started node has exited."""
        for key, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"node {self.specs[key].name} exited with code "
                    f"{proc.returncode}:\n"
                    f"{self.log_tail(key, 3000)}"
                )

    def stop(self) -> None:
        """SIGINT every node, then SIGKILL what is left after 10 s; remove segments left behind."""
        segments: set[Path] = set()
        for proc in self.procs.values():
            if proc.poll() is None:
                segments |= shm_segments(proc.pid)
                proc.send_signal(signal.SIGINT)
        for key in self.procs:
            self.kill(key, signal.SIGINT)
        remove_stale_segments(segments)
        self._close_manager()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def node_command(spec: NodeSpec, params_files: list[str]) -> list[str]:
    """``python -m module --ros-args ...`` for one node, with its parameter files and
    remappings."""
    cmd = [sys.executable, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        cmd += ["-r", f"__ns:=/{spec.namespace}"]
    for f in params_files:
        cmd += ["--params-file", f]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd
