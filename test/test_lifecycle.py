"""Edge and server as managed (lifecycle) nodes, driven through the standard lifecycle services
(``<node>/change_state``, ``<node>/get_state``) by the runner's Monitor node, as the process runner
and a lifecycle manager drive them; and the runner bringing a whole pipeline up in order."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import pytest
from rclpy.parameter import Parameter

from hecsb_ros.monitor import Monitor
from hecsb_ros.nodes.lifecycle import SUCCESS

pytestmark = [pytest.mark.ros, pytest.mark.quick]


class _Spinning:
    """Spin one node on its own thread (as its process would), for another node to call its
    services."""

    def __init__(self, node) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.node = node
        self._executor = SingleThreadedExecutor(context=node.context)
        self._executor.add_node(node)
        self._stop = threading.Event()
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            # recorded: a transition must never end the spin
            except BaseException as exc:
                self.errors.append(exc)
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._executor.remove_node(self.node)
        self.node.destroy_node()


def _managed(cls_path: str, **params):
    import importlib

    module, cls = cls_path.split(":")
    values = {"autostart": False, **params}
    return getattr(importlib.import_module(module), cls)(
        parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]
    )


def _change_state_by_id(monitor: Monitor, name: str, transition_id: int) -> bool:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    client = monitor.node.create_client(ChangeState, f"{name}/change_state")
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        assert monitor.spin_until(future.done, 10.0), "no answer: the node stopped spinning"
        return future.result().success
    finally:
        monitor.node.destroy_client(client)


def _state(monitor: Monitor, name: str, spinning: _Spinning) -> str:
    """``name``'s state through its get_state service; no answer fails with what its spin
    raised."""
    try:
        return monitor.lifecycle_state(name)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; errors of its spin: {spinning.errors!r}") from exc


def _subscriptions(node) -> set[str]:
    return {s.topic_name for s in node.subscriptions}


@pytest.mark.parametrize(
    "cls_path, input_topic",
    [
        ("hecsb_ros.nodes.server:ServerNode", "/latent"),
        ("hecsb_ros.nodes.edge:EdgeNode", "/image_raw"),
    ],
)
def test_transitions_through_the_standard_services(
    ros_context, random_classifier, cls_path, input_topic
):
    node = _managed(cls_path, codec="png", checkpoint=str(random_classifier))
    spinning = _Spinning(node)
    monitor = Monitor(f"lifecycle_test_{random.randint(0, 99999)}")
    name = node.get_name()
    try:
        assert monitor.wait_for_lifecycle(name, 30.0)
        assert _state(monitor, name, spinning) == "unconfigured"
        assert node.codec is None and input_topic not in _subscriptions(node)
        # not from unconfigured: refused, node keeps spinning
        assert not monitor.change_state(name, "activate")
        # by id, as launch_ros sends it (Jazzy's rclpy raised)
        assert not _change_state_by_id(monitor, name, 3)
        assert _state(monitor, name, spinning) == "unconfigured"

        assert monitor.change_state(name, "configure")
        assert _state(monitor, name, spinning) == "inactive"
        codec = node.codec
        assert codec is not None and codec.name == "png"  # the model is loaded at configure
        assert input_topic not in _subscriptions(node)  # ... but nothing is processed yet

        assert monitor.change_state(name, "activate")
        assert _state(monitor, name, spinning) == "active"
        assert input_topic in _subscriptions(node)

        assert monitor.change_state(name, "deactivate")
        assert _state(monitor, name, spinning) == "inactive"
        # stopped, model kept
        assert input_topic not in _subscriptions(node) and node.codec is codec
        assert monitor.change_state(name, "activate") and input_topic in _subscriptions(node)
        assert monitor.change_state(name, "deactivate")

        assert monitor.change_state(name, "cleanup")
        assert _state(monitor, name, spinning) == "unconfigured" and node.codec is None  # released
        assert monitor.change_state(name, "configure") and node.codec is not None  # loads again
        assert monitor.change_state(name, "shutdown")
        assert _state(monitor, name, spinning) == "finalized" and node.codec is None
        assert not spinning.errors
    finally:
        monitor.destroy()
        spinning.close()


@pytest.mark.parametrize(
    "cls_path", ["hecsb_ros.nodes.server:ServerNode", "hecsb_ros.nodes.edge:EdgeNode"]
)
def test_failed_configure_leaves_the_node_unconfigured_with_the_reason(
    ros_context, random_classifier, tmp_path, cls_path
):
    """An unknown checkpoint: configure fails, the node stays unconfigured and says why (log and
    /rosout, /diagnostics, ``last_error``); with the file in place the same node configures."""
    from rcl_interfaces.msg import Log
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    missing = tmp_path / "no_such_checkpoint.safetensors"
    node = _managed(cls_path, codec="png", checkpoint=str(missing))
    spinning = _Spinning(node)
    monitor = Monitor(f"lifecycle_test_{random.randint(0, 99999)}")
    name = node.get_name()
    logs: list[str] = []
    monitor.node.create_subscription(
        Log,
        "/rosout",
        lambda m: logs.append(m.msg) if m.name == name else None,
        QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        ),
    )
    try:
        assert monitor.wait_for_lifecycle(name, 30.0)
        assert not monitor.change_state(name, "configure")
        assert _state(monitor, name, spinning) == "unconfigured"
        assert node.codec is None
        assert str(missing) in node.last_error
        assert monitor.spin_until(
            lambda: any("configure failed" in m and str(missing) in m for m in logs), 10.0
        ), logs
        assert monitor.spin_until(
            lambda: str(missing) in monitor.diagnostics.get(name, {}).get("error", ""), 10.0
        )
        assert not monitor.change_state(name, "activate")
        assert _state(monitor, name, spinning) == "unconfigured"
        missing.write_bytes(Path(random_classifier).read_bytes())  # the operator fixes the file
        assert monitor.change_state(name, "configure")
        assert _state(monitor, name, spinning) == "inactive"
        assert node.last_error == ""
        assert not spinning.errors
    finally:
        monitor.destroy()
        spinning.close()


def test_plain_start_configures_and_activates_and_fails_fast(
    ros_context, random_classifier, tmp_path
):
    from hecsb_ros.nodes.server import ServerNode

    node = ServerNode(
        parameter_overrides=[
            Parameter("codec", value="png"),
            Parameter("checkpoint", value=str(random_classifier)),
        ]
    )
    try:
        assert node.lifecycle_state == "active" and "/latent" in _subscriptions(node)
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="no_such"):
        ServerNode(
            parameter_overrides=[
                Parameter("codec", value="png"),
                Parameter("checkpoint", value=str(tmp_path / "no_such.safetensors")),
            ]
        )


def test_transitions_run_on_managed_entities_and_the_state_is_tracked(
    ros_context, random_classifier
):
    """Every transition calls LifecycleNode's own callback: a lifecycle publisher a subclass makes
    is enabled by activate and disabled by deactivate, as rclpy's managed entities expect; the
    node's lifecycle_state follows each transition without reading rclpy's private state."""
    from std_msgs.msg import String

    from hecsb_ros.nodes.server import ServerNode

    class WithLifecyclePublisher(ServerNode):
        def _setup(self) -> None:
            super()._setup()
            self.managed_pub = self.create_lifecycle_publisher(String, "managed_topic", 10)

    node = WithLifecyclePublisher(
        parameter_overrides=[
            Parameter("autostart", value=False),
            Parameter("codec", value="png"),
            Parameter("checkpoint", value=str(random_classifier)),
        ]
    )
    try:
        assert node.lifecycle_state == "unconfigured"
        assert node.trigger_configure() == SUCCESS and node.lifecycle_state == "inactive"
        assert not node.managed_pub.is_activated
        assert node.trigger_activate() == SUCCESS and node.lifecycle_state == "active"
        assert node.managed_pub.is_activated  # enabled by LifecycleNode.on_activate
        assert node.trigger_deactivate() == SUCCESS and node.lifecycle_state == "inactive"
        assert not node.managed_pub.is_activated
        assert node.trigger_cleanup() == SUCCESS and node.lifecycle_state == "unconfigured"
        assert node.trigger_shutdown() == SUCCESS and node.lifecycle_state == "finalized"
    finally:
        node.destroy_node()


def test_an_unavailable_transition_by_id_is_refused_without_ending_the_spin(
    ros_context, random_classifier
):
    """Why nodes/lifecycle.py wraps the change_state service's callback: asked by id for a
    transition the current state does not have (activate from unconfigured, as launch_ros sends
    transitions), rclpy's own callback raises on Jazzy (rclpy 7.x), which in a spinning node ends
    the spin, and answers success false on Kilted; the nodes' callback answers false on both."""
    import importlib.metadata

    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from rclpy.lifecycle import LifecycleNode

    def ask(node) -> bool | None:
        """The callback's answer to activate-by-id; None when it raised."""
        (srv,) = [s for s in node.services if s.srv_type is ChangeState]
        request = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
        try:
            return srv.callback(request, ChangeState.Response()).success
        except Exception:  # noqa: BLE001 - rclpy's RCLError
            return None

    plain = LifecycleNode("plain_lifecycle_node")
    try:
        answer = ask(plain)
        if int(importlib.metadata.version("ros-rclpy").split(".")[0]) < 8:
            assert answer is None, "rclpy 7 (Jazzy) raised here when the wrapper was written"
        else:
            assert answer is False
    finally:
        plain.destroy_node()
    node = _managed(
        "hecsb_ros.nodes.server:ServerNode", codec="png", checkpoint=str(random_classifier)
    )
    try:
        assert ask(node) is False and node.lifecycle_state == "unconfigured"
    finally:
        node.destroy_node()


def test_a_late_state_answer_counts_and_no_answer_is_not_a_state(ros_context):
    """A node that answers get_state only after 1.2 s (busy in a transition, or starved of CPU on a
    loaded machine) is still read: the monitor asked again after 0.5 s and took the first answer,
    the one to its first request; a node that never answers gives None from
    query_lifecycle_state and a TimeoutError from lifecycle_state, never a state label."""
    import time

    from lifecycle_msgs.srv import GetState

    asked: list[float] = []

    def slow_get_state(request, response):
        asked.append(time.monotonic())
        time.sleep(1.2)
        response.current_state.label = "active"
        return response

    node = ros_context.create_node("slow_state_node")
    node.create_service(GetState, "slow_state_node/get_state", slow_get_state)
    spinning = _Spinning(node)
    monitor = Monitor(f"lifecycle_test_{random.randint(0, 99999)}")
    try:
        assert monitor.query_lifecycle_state("slow_state_node", 20.0) == "active"
        assert len(asked) >= 1
        assert monitor.query_lifecycle_state("no_such_node", 0.3) is None
        with pytest.raises(TimeoutError, match="no_such_node did not answer get_state"):
            monitor.lifecycle_state("no_such_node", 0.3)
        assert not spinning.errors
    finally:
        monitor.destroy()
        spinning.close()


@pytest.mark.dds
def test_runner_reports_a_failed_configure_and_brings_up_nothing_after_it(
    random_classifier, tmp_path
):
    """Processes over DDS: with an unknown checkpoint on the server the start fails with the node's
    reason, the server stays unconfigured and neither the edge nor the camera is brought up. (The
    order of a good start, server then edge active before the camera starts, is checked on
    test_faults_dds.py's running pipeline: test_the_runner_brought_the_pipeline_up_in_order.)"""
    import rclpy

    from hecsb_ros.runner import Pipeline

    domain = random.Random(f"{os.getpid()}lifecycle").randint(20, 99)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    monitor = Monitor("lifecycle_runner_monitor", context=context)
    try:
        good = {"checkpoint": str(random_classifier)}
        bad = {"checkpoint": str(tmp_path / "unknown.safetensors")}
        pipe = Pipeline(
            domain,
            tmp_path / "bad",
            {"edge": good, "server": bad},
            codec="png",
            link="false",
            monitor=monitor,
        )
        try:
            with pytest.raises(
                RuntimeError,
                match=r"hecsb_server: configure failed, the node is "
                r"unconfigured: "
                r"configure failed: .*unknown\.safetensors",
            ):
                pipe.start()
            assert (
                pipe.alive()["server"]
                and monitor.lifecycle_state("hecsb_server") == "unconfigured"
            )
            assert (
                monitor.lifecycle_state("hecsb_edge") == "unconfigured"
                and "camera_source" not in pipe.procs
            )
        finally:
            pipe.stop()
    finally:
        monitor.destroy()
        rclpy.try_shutdown(context=context)
