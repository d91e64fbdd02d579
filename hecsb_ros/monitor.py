"""The monitor: an in-process node that watches a running pipeline (results, statistics,
diagnostics) and drives other nodes' parameters and lifecycle transitions.

:class:`Monitor` records every result (arrival time, capture stamp, latency, bytes and timings,
whether it is right by the frame's class from ``image_raw/ground_truth``), the LinkStats of server
and edge, and the nodes' ``/diagnostics`` values; it sets parameters of other nodes and drives
their lifecycle transitions through their standard ``change_state`` / ``get_state`` services. The
process runner (:mod:`hecsb_ros.runner`) uses one as its lifecycle manager; the demo, the fault,
load and soak tools and the benchmarks watch their runs with one. All clocks are this machine's
(capture stamps and arrival times come from the same system clock).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Any, Callable


@dataclass(frozen=True)
class ResultRecord:
    """One result seen by the monitor: arrival (time.monotonic and system ns), capture ns, latency
    ms, payload bytes, the edge / transfer / server times the result carries, and its class."""

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
    robot: str = ""  # a fleet's robot ('' = one robot)
    server_batch: int = 1  # frames classified with it in one network call
    # middleware receive at the server -> its network call (part of server_ms)
    server_wait_ms: float = math.nan


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def spin_while(executor: Any, running: Callable[[], bool]) -> None:
    """Spin ``executor`` (on the caller's thread) while ``running()``; returns quietly when the
    context is shut down under it after ``running()`` turned false."""
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

    def __init__(
        self,
        name: str = "hecsb_monitor",
        context: Any = None,
        observe: bool = True,
        robots: tuple[str, ...] = (),
    ) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        from hecsb_ros.core.stats import GroundTruthBook
        from hecsb_ros.msg import ClassificationResult, GroundTruth, LinkStats
        from hecsb_ros.nodes.qos import reliable_qos, truth_qos

        self.node = rclpy.create_node(name, context=context)
        self.results: list[ResultRecord] = []
        self.link_stats: list[tuple[float, Any]] = []
        self.edge_stats: list[tuple[float, Any]] = []
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.diag_history: dict[str, deque[tuple[float, dict[str, str]]]] = {}
        self._result_subs: list[Any] = []
        # Each robot's ground truth (data-set sources send it on image_raw/ground_truth, a
        # benchmark-only side channel): results carry no labels and are scored by their header.
        # A result whose class comes later (its reader matched after the first frames: the
        # camera keeps the last 100 for it) is scored when it comes (_unscored).
        self._labels: dict[str, Any] = {}
        self._unscored: OrderedDict[tuple[str, int, str], tuple[int, int]] = OrderedDict()
        # a fleet's robots: each one's /<robot>/classification (ResultRecord.robot says whose)
        if observe:
            for robot in robots or ("",):
                self._labels[robot] = GroundTruthBook(capacity=5000)
                truth = f"/{robot}/image_raw/ground_truth" if robot else "image_raw/ground_truth"
                self.node.create_subscription(
                    GroundTruth, truth, lambda m, r=robot: self._on_truth(m, r), truth_qos()
                )
                topic = f"/{robot}/classification" if robot else "classification"
                self._result_subs.append(
                    self.node.create_subscription(
                        ClassificationResult,
                        topic,
                        lambda m, r=robot: self._on_result(m, r),
                        reliable_qos(200),
                    )
                )
            self.node.create_subscription(
                LinkStats,
                "link_stats",
                lambda m: self.link_stats.append((time.monotonic(), m)),
                reliable_qos(20),
            )
            self.node.create_subscription(
                LinkStats,
                "edge_stats",
                lambda m: self.edge_stats.append((time.monotonic(), m)),
                reliable_qos(20),
            )
            self.node.create_subscription(
                DiagnosticArray, "/diagnostics", self._on_diag, reliable_qos(50)
            )
        self._lifecycle_clients: dict[tuple[str, str], Any] = {}
        self._executor = SingleThreadedExecutor(context=self.node.context)
        self._executor.add_node(self.node)
        self._param_clients: dict[str, Any] = {}
        # Callbacks run on a background thread, so arrival times are right whatever the caller
        # does.
        self._running = True
        self._thread = threading.Thread(
            target=self._spin_forever, name="monitor_spin", daemon=True
        )
        self._thread.start()

    def _spin_forever(self) -> None:
        spin_while(self._executor, lambda: self._running)

    def _on_result(self, msg: Any, robot: str = "") -> None:
        now_ns = time.time_ns()
        capture = _stamp_ns(msg.header.stamp)
        book = self._labels.get(robot)
        correct = (
            None if book is None else book.correct(capture, msg.header.frame_id, int(msg.class_id))
        )
        if correct is None and book is not None:
            self._unscored[(robot, capture, msg.header.frame_id)] = (
                len(self.results),
                int(msg.class_id),
            )
            while len(self._unscored) > 5000:
                self._unscored.popitem(last=False)
        self.results.append(
            ResultRecord(
                time.monotonic(),
                now_ns,
                capture,
                int(msg.sequence),
                (now_ns - capture) / 1e6,
                correct,
                int(msg.payload_bytes),
                float(msg.edge_total_ms),
                float(msg.transfer_ms),
                float(msg.server_total_ms),
                int(msg.class_id),
                str(msg.label),
                float(msg.score),
                robot,
                int(msg.server_batch),
                float(msg.server_wait_ms),
            )
        )

    def _on_truth(self, msg: Any, robot: str) -> None:
        key = (robot, _stamp_ns(msg.header.stamp), msg.header.frame_id)
        late = self._unscored.pop(key, None)
        if late is None:
            self._labels[robot].add(key[1], key[2], msg.class_id)
        elif msg.class_id >= 0:  # its result came first: scored now
            index, class_id = late
            self.results[index] = replace(self.results[index], correct=msg.class_id == class_id)

    def _on_diag(self, msg: Any) -> None:
        for status in msg.status:
            name = status.name.split(":")[-1].strip().lstrip("/")
            self.diagnostics[name] = {kv.key: kv.value for kv in status.values}
            self.diag_history.setdefault(name, deque(maxlen=20000)).append(
                (time.monotonic(), self.diagnostics[name])
            )

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

    def diag_delta(
        self, node: str, key: str, t0: float, t1: float
    ) -> tuple[float, float, float, float]:
        """Change of a counter in ``node``'s diagnostics between the first report at or after
        ``t0`` and the last at or before ``t1``: ``(delta, seconds, from_t, to_t)``; NaNs when not
        covered."""
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
        return bool(self._result_subs) and all(
            sub.get_publisher_count() > 0 for sub in self._result_subs
        )

    # -- lifecycle (managed nodes), through the standard services ------------------------------
    def _lifecycle_client(self, node_name: str, service: str) -> Any:
        from lifecycle_msgs.srv import ChangeState, GetState

        key = (node_name, service)
        if key not in self._lifecycle_clients:
            srv_type = ChangeState if service == "change_state" else GetState
            self._lifecycle_clients[key] = self.node.create_client(
                srv_type, f"{node_name}/{service}"
            )
        return self._lifecycle_clients[key]

    def wait_for_lifecycle(
        self, node_name: str, timeout: float = 60.0, alive=lambda: True
    ) -> bool:
        """Wait until ``node_name`` answers ``<node>/get_state`` (False on timeout or as soon as
        ``alive()`` turns false). An answer, not the graph, tells: after a restart the graph may
        still list the killed process's services, and a request sent only to those is lost."""
        return self.query_lifecycle_state(node_name, timeout, alive) is not None

    #: Seconds between ``get_state`` requests while none is answered (the first resends sooner).
    STATE_RESEND_S = (0.5, 1.0, 2.0)

    def query_lifecycle_state(
        self, node_name: str, timeout: float = 10.0, alive=lambda: True
    ) -> str | None:
        """Label of ``node_name``'s lifecycle state (``<node>/get_state``), or None when no answer
        came within ``timeout`` seconds (or ``alive()`` turned false).

        While no answer comes the request is sent again (after 0.5, 1, then every 2 s) and the
        earlier ones stay pending: the first answer to any of them counts. A reply can be lost
        (seen with Fast DDS 2.x of Jazzy after a failed transition) and a node busy in a
        transition, or starved of CPU, answers late; both are a delay, not a state.
        """
        from lifecycle_msgs.srv import GetState

        client = self._lifecycle_client(node_name, "get_state")
        end = time.monotonic() + timeout
        pending: list[Any] = []
        next_send = 0.0
        try:
            while True:
                answered = next((f for f in pending if f.done()), None)
                if answered is not None:
                    return answered.result().current_state.label
                now = time.monotonic()
                if now >= end or not alive():
                    return None
                if now >= next_send and client.service_is_ready():
                    pending.append(client.call_async(GetState.Request()))
                    resend = self.STATE_RESEND_S
                    next_send = now + resend[min(len(pending), len(resend)) - 1]
                time.sleep(0.01)
        finally:
            for future in pending:
                if not future.done():
                    client.remove_pending_request(future)

    def lifecycle_state(self, node_name: str, timeout: float = 30.0) -> str:
        """Label of ``node_name``'s lifecycle state (``<node>/get_state``).

        Raises TimeoutError when the node gives no answer within ``timeout`` seconds (no answer is
        not a state: :meth:`query_lifecycle_state` returns None for it)."""
        state = self.query_lifecycle_state(node_name, timeout)
        if state is None:
            raise TimeoutError(f"{node_name} did not answer get_state within {timeout:g} s")
        return state

    #: transition label -> (state it starts from, state it leads to); shutdown starts from any
    TRANSITIONS = {
        "configure": ("unconfigured", "inactive"),
        "activate": ("inactive", "active"),
        "deactivate": ("active", "inactive"),
        "cleanup": ("inactive", "unconfigured"),
        "shutdown": ("", "finalized"),
    }

    def change_state(
        self, node_name: str, transition: str, timeout: float = 120.0, alive=lambda: True
    ) -> bool:
        """Trigger ``transition`` (configure, activate, deactivate, cleanup, shutdown) on
        ``node_name`` through ``<node>/change_state``; True when the node reports success.

        A request that never reached the node (a restarted process whose service the client has not
        matched yet) is sent again: while no answer comes, ``get_state`` tells whether the node is
        still in the start state (request lost), busy with the transition (no answer) or past it.
        """
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
            # the node answered: success, a refusal, or the answer to a resend of a lost request
            if done:
                drop_pending()
                return (
                    any(f.result().success for f in done)
                    or self.query_lifecycle_state(node_name, 5.0, alive) == goal
                )
            if not alive() or time.monotonic() > end:
                drop_pending()
                return False
            # None while the node is busy in the transition (it answers once it is done)
            state = self.query_lifecycle_state(node_name, 2.0, alive)
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
        return {
            "n": 0,
            "p50_ms": math.nan,
            "p95_ms": math.nan,
            "p99_ms": math.nan,
            "max_ms": math.nan,
        }
    return {
        "n": int(lat.size),
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }
