"""The process runner: the node set as separate processes, and a monitor node that watches them.

The one way the project starts its nodes without ``ros2 launch``: the demo (``run_demo``), the
fault, load and soak tools and the multi-process tests all use it. :class:`Pipeline` starts the
nodes described by :func:`hecsb_ros.graph.split_inference_nodes` (``python -m <module> --ros-args
...``, one parameter file per run), brings the managed (lifecycle) ones to active in
:data:`~hecsb_ros.graph.START_ORDER` through their standard ``change_state`` / ``get_state``
services before the camera source starts, can kill and restart any node, and reads their resident
memory and logs. :class:`Monitor` is an in-process node that records every result (arrival time,
capture stamp, latency, bytes and timings), the LinkStats of server and edge, and the nodes'
``/diagnostics`` values; it sets parameters of other nodes and drives their lifecycle transitions.
All clocks are this machine's (capture stamps and arrival times come from the same system clock).
"""
from __future__ import annotations

import atexit
import fcntl
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from hecsb_ros.graph import START_ORDER, NodeSpec, dds_environment, split_inference_nodes

ROOT = Path(__file__).resolve().parents[1]


def ros_env(domain_id: int | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: discovery kept on this machine and the shipped Fast DDS
    profile (large camera frames between processes; :func:`hecsb_ros.graph.fastdds_profile`), unless
    the caller's environment says otherwise (``FASTDDS_DEFAULT_PROFILES_FILE=`` empty: no profile;
    both Fast DDS variable names are set, see :func:`hecsb_ros.graph.dds_environment`),
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
            if name.startswith(prefix) and not name.startswith(prefix + "port") and not name.endswith("_el"):
                out.add(Path(name))
    return out


def remove_stale_segments(segments: set[Path]) -> list[Path]:
    """Remove those ``segments`` whose owner is gone: nobody holds the lock on ``<segment>_el``.

    A process killed without clean-up (SIGKILL) leaves its segment behind, with the profile 32 MiB of
    RAM in ``/dev/shm`` each; Fast DDS does not reclaim it. A live owner holds the lock, so its
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
            ``server``: in a fleet every robot's) or per key (``robot1/edge``), applied after the graph's own.
        params_files: the user's YAML parameter files, given to every node before the run's own
            (so the graph's values and ``params`` win).
        env: base environment of the processes (default: this process's).
        node_env: environment per node role over ``env``; a value None removes the variable. The graph's
            own (``NodeSpec.env``, e.g. the edge's malloc settings) applies where ``env`` has none.
        monitor: the :class:`Monitor` that drives the lifecycle transitions (and whose result
            subscription must be matched before the camera starts); None: the pipeline makes its own
            lifecycle client node on the same domain when it first needs one.
        **graph_args: arguments of :func:`split_inference_nodes` (codec, profile, rate_hz, lifecycle, ...).
    """

    def __init__(self, domain_id: int | None, log_dir: Path, params: dict[str, dict[str, Any]] | None = None,
                 params_files: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 node_env: dict[str, dict[str, str | None]] | None = None, monitor: "Monitor | None" = None,
                 **graph_args: str) -> None:
        self.env = ros_env(domain_id, env)
        self.node_env = dict(node_env or {})
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.specs: dict[str, NodeSpec] = {s.key: s for s in split_inference_nodes(**graph_args)}
        # Keys: node names; a fleet's robots by their full name (/robot1/hecsb_edge). ``params`` per role
        # (every robot's edge) or per key (robot1/edge).
        values = {(f"/{s.path}" if s.namespace else s.name): {"ros__parameters": {
            **s.parameters, **(params or {}).get(s.role, {}), **(params or {}).get(s.key, {})}}
            for s in self.specs.values()}
        self._params_files = [str(Path(f).resolve()) for f in params_files] + [str(self.log_dir / "params.yaml")]
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
        """Start the given roles (all when none given) in :data:`START_ORDER`: every process but the
        camera source's at once, then each managed node configured and activated in turn (server,
        then edge; a failed transition raises RuntimeError with the node's reason), then the camera
        source once the chain is active and discovered."""
        wanted = keys or tuple(self.specs)
        rank = {role: i for i, role in enumerate(START_ORDER)}
        order = sorted(wanted, key=lambda k: rank.get(self.specs[k].role, len(rank)))  # stable: robots in order
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
        for name, value in {**self.node_env.get(spec.role, {}), **self.node_env.get(key, {})}.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.procs[key] = subprocess.Popen(self.command(key), cwd=ROOT, env=env, stdout=log,
                                           stderr=subprocess.STDOUT)
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
            self._own_manager = (context, Monitor(f"hecsb_runner_{os.getpid()}", context=context, observe=False))
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
            raise TimeoutError(f"the lifecycle services of {name} did not appear within {timeout:.0f} s")
        for transition in ("configure", "activate"):
            if not manager.change_state(name, transition, timeout, alive):
                self.check()
                state = manager.lifecycle_state(name)
                raise RuntimeError(f"{name}: {transition} failed, the node is {state}: {self.failure_reason(key)}")

    def failure_reason(self, key: str) -> str:
        """The last "... failed: reason" line of the node's log (what a failed transition logged)."""
        lines = [ln for ln in self.log_tail(key, 20000).splitlines() if "failed: " in ln]
        return lines[-1].split("]: ", 1)[-1] if lines else "(no reason in the log)"

    def _wait_for_chain(self, timeout: float) -> None:
        """Wait (bounded) until the topics from the edge on have a publisher and a subscriber in this
        process's view of the graph and ``monitor``'s result subscription is matched: discovery
        between the nodes is then done, so the camera's first frames are not published into it."""
        manager = self.manager()
        robots = sorted({s.namespace for s in self.specs.values() if s.role == "camera_source"}) or [""]
        link = any(s.role == "link_emulator" for s in self.specs.values())
        topics = [f"/{r}/{t}" if r else t for r in robots
                  for t in ["latent", "classification"] + (["latent_shaped"] if link else [])]
        monitor = self.monitor

        def ready() -> bool:
            self.check()
            matched = monitor is None or monitor.results_matched()
            return matched and all(manager.node.count_publishers(t) > 0 and manager.node.count_subscribers(t) > 0
                                   for t in topics)

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
        return self.log_dir / (f"{spec.namespace}_{spec.name}.log" if spec.namespace else f"{spec.name}.log")

    def log_tail(self, key: str, chars: int = 2000) -> str:
        path = self.log_path(key)
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def check(self) -> None:
        """RuntimeError with the node's last output when a started node has exited."""
        for key, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"node {self.specs[key].name} exited with code {proc.returncode}:\n"
                                   f"{self.log_tail(key, 3000)}")

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
    """``python -m module --ros-args ...`` for one node, with its parameter files and remappings."""
    cmd = [sys.executable, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        cmd += ["-r", f"__ns:=/{spec.namespace}"]
    for f in params_files:
        cmd += ["--params-file", f]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


@dataclass(frozen=True)
class ResultRecord:
    """One result seen by the monitor: arrival (time.monotonic and system ns), capture ns, latency ms,
    payload bytes, the edge / transfer / server times the result carries, and its class."""

    arrival_mono: float
    arrival_ns: int
    capture_ns: int
    sequence: int
    latency_ms: float
    correct: bool | None
    payload_bytes: int = 0
    edge_ms: float = math.nan
    transfer_ms: float = math.nan
    server_ms: float = math.nan
    class_id: int = -1
    label: str = ""
    score: float = math.nan
    robot: str = ""               # a fleet's robot ('' = one robot)
    server_batch: int = 1         # frames classified with it in one network call


def spin_while(executor: Any, running: Callable[[], bool]) -> None:
    """Spin ``executor`` (on the caller's thread) while ``running()``; returns quietly when the context
    is shut down under it after ``running()`` turned false."""
    while running():
        try:
            executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: BLE001 - context shut down under us
            if running():
                raise
            return


class Monitor:
    """In-process observer node; its callbacks run on its own thread.

    With ``observe`` (default) it records results, LinkStats and diagnostics; without, it is only a
    client of other nodes' parameter and lifecycle services (the runner's own lifecycle manager).
    """

    def __init__(self, name: str = "hecsb_monitor", context: Any = None, observe: bool = True,
                 robots: tuple[str, ...] = ()) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        from hecsb_ros.msg import ClassificationResult, LinkStats
        from hecsb_ros.nodes.common import reliable_qos

        self.node = rclpy.create_node(name, context=context)
        self.results: list[ResultRecord] = []
        self.link_stats: list[tuple[float, Any]] = []
        self.edge_stats: list[tuple[float, Any]] = []
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.diag_history: dict[str, deque[tuple[float, dict[str, str]]]] = {}
        self._result_subs: list[Any] = []
        if observe:  # a fleet's robots: each one's /<robot>/classification (ResultRecord.robot says whose)
            for robot in robots or ("",):
                topic = f"/{robot}/classification" if robot else "classification"
                self._result_subs.append(self.node.create_subscription(
                    ClassificationResult, topic, lambda m, r=robot: self._on_result(m, r), reliable_qos(200)))
            self.node.create_subscription(LinkStats, "link_stats",
                                          lambda m: self.link_stats.append((time.monotonic(), m)), reliable_qos(20))
            self.node.create_subscription(LinkStats, "edge_stats",
                                          lambda m: self.edge_stats.append((time.monotonic(), m)), reliable_qos(20))
            self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, reliable_qos(50))
        self._lifecycle_clients: dict[tuple[str, str], Any] = {}
        self._executor = SingleThreadedExecutor(context=self.node.context)
        self._executor.add_node(self.node)
        self._param_clients: dict[str, Any] = {}
        # Callbacks run on a background thread, so arrival times are right whatever the caller does.
        self._running = True
        self._thread = threading.Thread(target=self._spin_forever, name="monitor_spin", daemon=True)
        self._thread.start()

    def _spin_forever(self) -> None:
        spin_while(self._executor, lambda: self._running)

    def _on_result(self, msg: Any, robot: str = "") -> None:
        now_ns = time.time_ns()
        capture = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        correct = None if msg.ground_truth < 0 else bool(msg.ground_truth == msg.class_id)
        self.results.append(ResultRecord(time.monotonic(), now_ns, capture, int(msg.sequence),
                                         (now_ns - capture) / 1e6, correct, int(msg.payload_bytes),
                                         float(msg.edge_total_ms), float(msg.transfer_ms),
                                         float(msg.server_total_ms), int(msg.class_id), str(msg.label),
                                         float(msg.score), robot, int(msg.server_batch)))

    def _on_diag(self, msg: Any) -> None:
        for status in msg.status:
            name = status.name.split(":")[-1].strip().lstrip("/")
            self.diagnostics[name] = {kv.key: kv.value for kv in status.values}
            self.diag_history.setdefault(name, deque(maxlen=20000)).append((time.monotonic(), self.diagnostics[name]))

    def spin(self, seconds: float) -> None:
        """Let ``seconds`` pass (callbacks run on the monitor's own thread)."""
        time.sleep(max(0.0, seconds))

    def spin_until(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    def results_since(self, t_mono: float) -> list[ResultRecord]:
        return [r for r in self.results if r.arrival_mono >= t_mono]

    def diag_int(self, node: str, key: str) -> int:
        try:
            return int(float(self.diagnostics.get(node, {}).get(key, "nan")))
        except ValueError:
            return -1

    def diag_delta(self, node: str, key: str, t0: float, t1: float) -> tuple[float, float, float, float]:
        """Change of a counter in ``node``'s diagnostics between the first report at or after ``t0``
        and the last at or before ``t1``: ``(delta, seconds, from_t, to_t)``; NaNs when not covered."""
        hist = [(t, v) for t, v in self.diag_history.get(node, ()) if t0 <= t <= t1 and key in v]
        if len(hist) < 2:
            return math.nan, math.nan, math.nan, math.nan
        (ta, va), (tb, vb) = hist[0], hist[-1]
        return float(vb[key]) - float(va[key]), tb - ta, ta, tb

    def set_parameter(self, node_name: str, name: str, value: Any, timeout: float = 10.0) -> float:
        """Set ``name`` on ``node_name``; returns time.monotonic() when the node confirmed it."""
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        client = self._param_clients.get(node_name)
        if client is None:
            client = self._param_clients[node_name] = AsyncParameterClient(self.node, node_name)
        if not self.spin_until(lambda: client.services_are_ready(), timeout):
            raise TimeoutError(f"parameter services of {node_name} not available")
        future = client.set_parameters([Parameter(name, value=value)])
        if not self.spin_until(future.done, timeout):
            raise TimeoutError(f"setting {name} on {node_name} timed out")
        result = future.result().results[0]
        if not result.successful:
            raise ValueError(f"{node_name} refused {name}={value!r}: {result.reason}")
        return time.monotonic()

    def results_matched(self) -> bool:
        """Whether the result subscription is matched with a publisher (results would arrive)."""
        return bool(self._result_subs) and all(sub.get_publisher_count() > 0 for sub in self._result_subs)

    # -- lifecycle (managed nodes), through the standard services ------------------------------
    def _lifecycle_client(self, node_name: str, service: str) -> Any:
        from lifecycle_msgs.srv import ChangeState, GetState

        key = (node_name, service)
        if key not in self._lifecycle_clients:
            srv_type = ChangeState if service == "change_state" else GetState
            self._lifecycle_clients[key] = self.node.create_client(srv_type, f"{node_name}/{service}")
        return self._lifecycle_clients[key]

    def wait_for_lifecycle(self, node_name: str, timeout: float = 60.0, alive=lambda: True) -> bool:
        """Wait until ``node_name`` answers ``<node>/get_state`` (False on timeout or as soon as
        ``alive()`` turns false). An answer, not the graph, tells: after a restart the graph may still
        list the killed process's services, and a request sent only to those is lost."""
        from lifecycle_msgs.srv import GetState

        client = self._lifecycle_client(node_name, "get_state")
        end = time.monotonic() + timeout
        while time.monotonic() < end and alive():
            if client.service_is_ready() and self._call(client, GetState.Request(), 1.0, alive) is not None:
                return True
            time.sleep(0.05)
        return False

    def _call(self, client: Any, request: Any, timeout: float, alive=lambda: True) -> Any:
        future = client.call_async(request)
        if not self.spin_until(lambda: future.done() or not alive(), timeout) or not future.done():
            client.remove_pending_request(future)
            return None
        return future.result()

    def lifecycle_state(self, node_name: str, timeout: float = 10.0) -> str:
        """Label of ``node_name``'s lifecycle state (``<node>/get_state``); '' when it does not answer."""
        from lifecycle_msgs.srv import GetState

        client = self._lifecycle_client(node_name, "get_state")
        end = time.monotonic() + timeout
        if not client.wait_for_service(timeout_sec=timeout):
            return ""
        # Asked again every 2 s: a reply can be lost (seen with Fast DDS 2.x of Jazzy after a failed
        # transition), and a node busy in a transition answers only once it is done.
        while True:
            left = end - time.monotonic()
            response = self._call(client, GetState.Request(), max(0.1, min(2.0, left)))
            if response is not None:
                return response.current_state.label
            if left <= 2.0:
                return ""

    #: transition label -> (state it starts from, state it leads to); shutdown starts from any
    TRANSITIONS = {"configure": ("unconfigured", "inactive"), "activate": ("inactive", "active"),
                   "deactivate": ("active", "inactive"), "cleanup": ("inactive", "unconfigured"),
                   "shutdown": ("", "finalized")}

    def change_state(self, node_name: str, transition: str, timeout: float = 120.0, alive=lambda: True) -> bool:
        """Trigger ``transition`` (configure, activate, deactivate, cleanup, shutdown) on ``node_name``
        through ``<node>/change_state``; True when the node reports success.

        A request that never reached the node (a restarted process whose service the client has not
        matched yet) is sent again: while no answer comes, ``get_state`` tells whether the node is
        still in the start state (request lost), busy with the transition (no answer) or past it."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        client = self._lifecycle_client(node_name, "change_state")
        if not client.wait_for_service(timeout_sec=min(timeout, 10.0)):
            return False
        request = ChangeState.Request(transition=Transition(label=transition))
        start, goal = self.TRANSITIONS.get(transition, ("", ""))
        futures = [client.call_async(request)]
        end = time.monotonic() + timeout

        def drop_pending() -> None:
            for f in futures:
                if not f.done():
                    client.remove_pending_request(f)

        while True:
            self.spin_until(lambda: any(f.done() for f in futures) or not alive(), 5.0)
            done = [f for f in futures if f.done()]
            if done:  # the node answered: success, a refusal, or the answer to a resend of a lost request
                drop_pending()
                return any(f.result().success for f in done) or self.lifecycle_state(node_name, 5.0) == goal
            if not alive() or time.monotonic() > end:
                drop_pending()
                return False
            state = self.lifecycle_state(node_name, 2.0)  # '' while the node is busy in the transition
            if state == goal:
                drop_pending()
                return True
            if start and state == start:
                futures.append(client.call_async(request))

    def destroy(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        self._executor.remove_node(self.node)
        self.node.destroy_node()


def latency_stats(records: list[ResultRecord]) -> dict[str, float]:
    """p50/p95/p99/max of capture -> result latency in ms."""
    import numpy as np

    lat = np.asarray([r.latency_ms for r in records], dtype=np.float64)
    if lat.size == 0:
        return {"n": 0, "p50_ms": math.nan, "p95_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    return {"n": int(lat.size), "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())}


def temp_log_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
