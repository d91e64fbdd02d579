"""Shared node plumbing: QoS profiles, parameter declaration, drop counting, diagnostics, the managed
(lifecycle) codec node base, main()."""
from __future__ import annotations

import dataclasses
import gc
import math
import os
import sys
import threading
import time
from typing import Any, Callable, Hashable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from hecsb_ros.core.codecs import Codec, CodecSettings, create_codec, load_codec_modules
from hecsb_ros.core.stats import LinkStatsAccumulator
from hecsb_ros.graph import fastdds_profile_problem, profile_setting
from hecsb_ros.params import Param, check_value


# -- QoS ----------------------------------------------------------------------------------------
def image_qos(depth: int) -> QoSProfile:
    """Camera frames: best effort, keep last ``depth`` (stale frames are dropped, never queued)."""
    qos = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in ("reliability", "durability")},
                     history=HistoryPolicy.KEEP_LAST, depth=depth)
    return qos


def reliable_qos(depth: int) -> QoSProfile:
    """Latents, results and statistics: reliable, keep last ``depth``."""
    return QoSProfile(reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                      history=HistoryPolicy.KEEP_LAST, depth=depth)


def latched_qos() -> QoSProfile:
    """Static metadata (vision_msgs/VisionInfo, LabelInfo): reliable, transient local, keep last 1, so
    that a subscriber that joins later still gets the last message."""
    return QoSProfile(reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                      history=HistoryPolicy.KEEP_LAST, depth=1)


# -- parameters ---------------------------------------------------------------------------------
def _descriptor(p: Param) -> ParameterDescriptor:
    d = ParameterDescriptor(description=p.description, read_only=p.read_only)
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    if isinstance(p.default, bool):
        return d
    if isinstance(p.default, int) and p.min is not None and p.max is not None:
        d.integer_range = [IntegerRange(from_value=int(p.min), to_value=int(p.max), step=1)]
    elif isinstance(p.default, float) and p.min is not None and p.max is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(p.min), to_value=float(p.max), step=0.0)]
    return d


def declare_parameters(node: Node, params: tuple[Param, ...], validate: bool = True) -> dict[str, Any]:
    """Declare ``params`` with descriptors, validate the start-up values, return them by name.

    Raises ValueError (fail fast) with every invalid value and the fix (with ``validate=False`` the
    caller checks later, see :func:`parameter_problems`); installs a callback that rejects invalid
    runtime changes with a reason.
    """
    by_name = {p.name: p for p in params}
    values: dict[str, Any] = {}
    for p in params:
        value = node.declare_parameter(p.name, p.default, _descriptor(p)).value
        if isinstance(p.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        values[p.name] = value
    problems = parameter_problems(node, params)
    if validate and problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))

    def on_set(changes: list[rclpy.parameter.Parameter]) -> SetParametersResult:
        for change in changes:
            p = by_name.get(change.name)
            if p is None:
                continue
            reason = check_value(p, change.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


@dataclasses.dataclass(frozen=True)
class CodecNodeConfig:
    """Parameters every codec-running node (edge, server) reads; see ``hecsb_ros.params``."""

    codec: str
    quality: int
    checkpoint: str
    teacher: str
    plugins: str
    device: str
    threads: int
    onednn: bool
    backend: str
    onnx_cache: str
    resize: str
    stats_period_s: float

    def codec_settings(self) -> CodecSettings:
        """The codec's settings from these parameters."""
        return CodecSettings(quality=self.quality, checkpoint=self.checkpoint, device=self.device,
                             threads=self.threads, onednn=self.onednn, teacher=self.teacher, resize=self.resize,
                             backend=self.backend, onnx_cache=self.onnx_cache)

    def create_codec(self) -> Codec:
        """Import the ``plugins`` modules, then build the configured codec (ValueError says why not)."""
        load_codec_modules([m.strip() for m in self.plugins.split(",") if m.strip()])
        return create_codec(self.codec, self.codec_settings())


def parameter_problems(node: Node, params: tuple[Param, ...]) -> list[str]:
    """Why the node's current values of ``params`` are not acceptable (empty: all are)."""
    problems = []
    for p in params:
        reason = check_value(p, node.get_parameter(p.name).value)
        if reason:
            problems.append(reason)
    return problems


def read_config(node: Node, params: tuple[Param, ...], cls: type) -> Any:
    """Current values of ``params`` as an instance of the frozen dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{p.name: node.get_parameter(p.name).value for p in params if p.name in names})


# -- bad input ----------------------------------------------------------------------------------
class DropCounter:
    """Counts rejected input per reason in ``stats`` and logs it, throttled per reason."""

    def __init__(self, node: Node, stats: LinkStatsAccumulator, throttle_s: float = 5.0) -> None:
        self._node = node
        self._stats = stats
        self._throttle_s = throttle_s

    def __call__(self, reason: str, detail: str) -> None:
        self._stats.drop(reason)
        self._node.get_logger().warning(
            f"dropped input ({reason}): {detail} [{self._stats.drop_counts[reason]} so far]",
            throttle_duration_sec=self._throttle_s)


# -- newest-frame policy ------------------------------------------------------------------------
class NewestWorker:
    """Keeps the newest item per key (a camera, a robot) and hands them to ``process`` on its own thread.

    A subscription callback calls :meth:`put` (cheap; the executor keeps taking messages while the
    worker computes); an item still waiting when a newer one of its key arrives is replaced and
    reported to ``on_skip``. The worker takes the keys that wait longest first, up to ``max_items``
    at once; with ``max_items > 1`` it waits up to ``max_wait_s`` from the first item for items of
    other keys (at most ``keys()`` of them: one per robot), a micro-batch. With a ``gate`` (returns 0
    when the worker may take items now, else the seconds after which to ask again) items wait in their
    slots while it is closed, newer ones still replacing older ones; :meth:`wake` asks it again at once
    (the edge's in-flight limit: a result came back). With ``stale`` ((item, idle_since) -> bool;
    ``idle_since``: when the worker last became free, monotonic s), an item found stale when the gate
    opens is skipped (``on_skip``) and the worker waits for a newer one. :meth:`stop`
    processes what is still waiting, gate or not, then ends the thread.
    """

    def __init__(self, name: str, process: Callable[[list[Any]], None], on_skip: Callable[[Hashable, Any], None],
                 on_error: Callable[[BaseException], None], max_items: int = 1, max_wait_s: float = 0.0,
                 keys: Callable[[], int] = lambda: 1, gate: Callable[[], float] | None = None,
                 stale: Callable[[Any, float], bool] | None = None) -> None:
        self._process, self._on_skip, self._on_error = process, on_skip, on_error
        self._gate, self._stale = gate, stale
        self._max_items, self._max_wait_s, self._keys = max(1, max_items), max_wait_s, keys
        self._slots: dict[Hashable, Any] = {}
        self._first_s = 0.0
        self._idle_since = time.monotonic()
        self._cv = threading.Condition()
        self._running = True
        self.busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, key: Hashable, item: Any) -> bool:
        """Store ``item`` as the newest of ``key``; True when it replaced (skipped) an older one."""
        with self._cv:
            old = self._slots.get(key)
            if not self._slots:
                self._first_s = time.monotonic()
            self._slots[key] = item  # an existing key keeps its place in the order: waiting longest first
            self._cv.notify()
        if old is not None:
            self._on_skip(key, old)
        return old is not None

    @property
    def waiting(self) -> int:
        with self._cv:
            return len(self._slots)

    def wake(self) -> None:
        """Ask the gate again now (it may have opened)."""
        with self._cv:
            self._cv.notify()

    def _take(self) -> list[Any] | None:
        with self._cv:
            while True:
                while self._running and not self._slots:
                    self._cv.wait()
                if not self._slots:
                    return None  # stopped, nothing left
                delay = self._gate() if self._running and self._gate is not None else 0.0
                if delay > 0:
                    self._cv.wait(delay)  # closed: a wake(), a newer item or the delay asks again
                    continue
                if self._running and self._stale is not None:
                    old = [(k, v) for k, v in self._slots.items() if self._stale(v, self._idle_since)]
                    if old:
                        for key, _ in old:
                            del self._slots[key]
                        self._cv.release()  # on_skip outside the lock, as put() calls it
                        try:
                            for key, item in old:
                                self._on_skip(key, item)
                        finally:
                            self._cv.acquire()
                        continue
                break
            want = min(self._max_items, max(1, self._keys()))
            deadline = self._first_s + self._max_wait_s
            while self._running and len(self._slots) < want and time.monotonic() < deadline:
                self._cv.wait(deadline - time.monotonic())
            keys = list(self._slots)[:self._max_items]
            items = [self._slots.pop(k) for k in keys]
            if self._slots:
                self._first_s = time.monotonic()
            self.busy = True
            return items

    def _run(self) -> None:
        while True:
            items = self._take()
            if items is None:
                return
            try:
                self._process(items)
            except Exception as exc:  # noqa: BLE001 - one bad item must not end the worker
                self._on_error(exc)
            finally:
                self.busy = False
                self._idle_since = time.monotonic()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Process what is waiting, then end the thread (waits up to ``timeout_s``)."""
        with self._cv:
            self._running = False
            self._cv.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)


# -- diagnostics --------------------------------------------------------------------------------
class Diagnostics:
    """Publishes one DiagnosticStatus for the node on ``/diagnostics``."""

    def __init__(self, node: Node, hardware_id: str = "") -> None:
        self._node = node
        self._hw = hardware_id
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", reliable_qos(10))

    def publish(self, level: bytes, message: str, values: dict[str, Any]) -> None:
        status = DiagnosticStatus(level=level, name=f"hecsb_ros: {self._node.get_fully_qualified_name()}",
                                  message=message, hardware_id=self._hw)
        status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self._node.get_clock().now().to_msg()
        arr.status = [status]
        self._pub.publish(arr)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def check_fastdds_profile(node: Node, publishes_frames: bool = False) -> None:
    """Log an error when the Fast DDS profile variable names a missing file (Fast DDS then runs on
    its defaults and large frames are lost); with ``publishes_frames`` also warn when it is unset."""
    problem = fastdds_profile_problem(os.environ)
    if problem is None:
        return
    if profile_setting(os.environ):
        node.get_logger().error(problem)
    elif publishes_frames:
        node.get_logger().warning(problem)


# -- managed (lifecycle) codec nodes ------------------------------------------------------------
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class ManagedCodecNode(LifecycleNode):
    """Base of the edge and the server: a ROS 2 managed (lifecycle) node.

    Construction declares the parameters (descriptors, runtime changes validated) and the standard
    lifecycle services (``<node>/change_state``, ``<node>/get_state``, ...). Transitions:

    - ``configure``: validate the parameters, read them (``self.cfg``), load the codec and its
      checkpoints, create the publishers (:meth:`_setup`). Any error fails the transition: the node
      stays unconfigured, the reason is logged ("configure failed: ...", also on ``/rosout``), kept
      in ``last_error`` and published on ``/diagnostics``;
    - ``activate``: create the subscriptions and timers (:meth:`_start`): processing starts;
    - ``deactivate``: destroy them; the loaded codec stays;
    - ``cleanup`` / ``shutdown``: release the codec and the publishers.

    With the ``autostart`` parameter (default true) the node configures and activates itself at
    construction, as a plain node starts, and a failed configure raises ValueError (fail fast);
    with ``autostart: false`` it waits unconfigured for a lifecycle manager.
    """

    def __init__(self, node_name: str, params: tuple[Param, ...], config_cls: type, **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        self._params = params
        self._config_cls = config_cls
        declare_parameters(self, params, validate=False)  # checked by configure
        self.cfg: Any = None
        self.codec: Codec | None = None
        self.bank: Any = None  # CodecBank of the codec's rate levels (set by configure)
        self.last_error = ""
        self._owned_publishers: list[Any] = []
        self._active_entities: list[Any] = []  # subscriptions and timers of the active state
        self._diag = Diagnostics(self)
        _guard_change_state_service(self)
        if self.get_parameter("autostart").value:
            if self.trigger_configure() != SUCCESS:
                raise ValueError(self.last_error or "configure failed")
            if self.trigger_activate() != SUCCESS:
                raise ValueError(self.last_error or "activate failed")

    # subclass hooks --------------------------------------------------------------------------
    def _setup(self) -> None:
        """Configure: create publishers and counters (``self.cfg`` and ``self.codec`` are set)."""

    def _start(self) -> None:
        """Activate: create subscriptions and timers with :meth:`_subscribe` / :meth:`_timer`."""

    def _ready_line(self) -> str:
        """The log line written once the node is active."""
        return "active"

    # helpers for the hooks -------------------------------------------------------------------
    def _publisher(self, msg_type: Any, topic: str, qos: QoSProfile) -> Any:
        pub = self.create_publisher(msg_type, topic, qos)
        self._owned_publishers.append(pub)
        return pub

    def _subscribe(self, *args: Any, **kwargs: Any) -> Any:
        sub = self.create_subscription(*args, **kwargs)
        self._active_entities.append(sub)
        return sub

    def _timer(self, period_s: float, callback: Callable[[], None]) -> Any:
        timer = self.create_timer(period_s, callback)
        self._active_entities.append(timer)
        return timer

    # transitions -----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            problems = parameter_problems(self, self._params)
            if problems:
                raise ValueError("invalid parameters: " + "; ".join(problems))
            self.cfg = read_config(self, self._params, self._config_cls)
            self.codec = self.cfg.create_codec()
            self._setup()
        except Exception as exc:  # noqa: BLE001 - every configure error is a failed transition with its reason
            self._release()
            reason = str(exc) if isinstance(exc, (ValueError, FileNotFoundError)) else f"{type(exc).__name__}: {exc}"
            self.last_error = reason
            self.get_logger().error(f"configure failed: {reason}")
            self._diag.publish(ERROR, f"configure failed: {reason}", {"lifecycle": "unconfigured", "error": reason})
            return FAILURE
        self.last_error = ""
        self.get_logger().info(f"configured: loaded codec {self.codec.name} (quality {self.codec.quality}, "
                               f"model {self.codec.model_id}) on {self.cfg.device}, backend {self.cfg.backend}")
        self._diag.publish(OK, "inactive (configured)", {"lifecycle": "inactive", "codec": self.codec.name})
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._start()
        except Exception as exc:  # noqa: BLE001
            self._stop()
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"activate failed: {self.last_error}")
            return FAILURE
        self.get_logger().info(self._ready_line())
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self.get_logger().info("deactivated: processing stopped, codec kept")
        self._diag.publish(OK, "inactive", {"lifecycle": "inactive", "codec": self.codec.name if self.codec else ""})
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: codec released")
        self._diag.publish(OK, "unconfigured", {"lifecycle": "unconfigured"})
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return SUCCESS  # back to unconfigured

    def _stop(self) -> None:
        for entity in self._active_entities:
            if hasattr(entity, "cancel"):
                entity.cancel()
                self.destroy_timer(entity)
            else:
                self.destroy_subscription(entity)
        self._active_entities = []

    def _release(self) -> None:
        self._stop()
        for pub in self._owned_publishers:
            self.destroy_publisher(pub)
        self._owned_publishers = []
        self.codec = None
        self.bank = None
        gc.collect()

    @property
    def lifecycle_state(self) -> str:
        """Label of the current lifecycle state (unconfigured, inactive, active, finalized, ...)."""
        return self._state_machine.current_state[1]


def _guard_change_state_service(node: LifecycleNode) -> None:
    """Answer ``success: false`` to a transition the current state does not have. Jazzy's rclpy (7.1)
    raises from the service callback instead, which ends the node's spin; Kilted's returns an error."""
    srv = getattr(node, "_service_change_state", None)
    if srv is None:
        return
    inner = srv.callback

    def change_state(request: Any, response: Any) -> Any:
        try:
            return inner(request, response)
        except Exception as exc:  # noqa: BLE001 - rclpy's RCLError for a transition not available now
            node.get_logger().error(f"transition {request.transition.label or request.transition.id} refused in "
                                    f"state {node._state_machine.current_state[1]}: {exc}")
            response.success = False
            return response

    srv.callback = change_state


# -- entry point --------------------------------------------------------------------------------
def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C/SIGTERM; a start-up error exits with code 2."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        check_fastdds_profile(node, bool(getattr(node, "publishes_frames", False)))
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, FileNotFoundError) as exc:
        print(f"[hecsb_ros] cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        if node is not None:
            shutdown = getattr(node, "on_shutdown", None)
            if shutdown is not None and not isinstance(node, LifecycleNode):
                shutdown()  # plain nodes' clean-up (the link emulator's delivery thread)
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0
