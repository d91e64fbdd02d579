"""The managed (lifecycle) codec node: the base of the edge and the server.

Its configure loads the codec (imported then, not with this module: processes that never configure
a codec, and tools that only need the node toolkit, do not load torch for it).
"""

from __future__ import annotations

import dataclasses
import gc
from typing import TYPE_CHECKING, Any, Callable

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile

from hecsb_ros.nodes.diagnostics import ERROR, OK, Diagnostics
from hecsb_ros.nodes.parameters import declare_parameters, parameter_problems, read_config
from hecsb_ros.params import Param

if TYPE_CHECKING:
    from hecsb_ros.core.codecs import Codec, CodecSettings

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


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
        from hecsb_ros.core.codecs import CodecSettings

        return CodecSettings(
            quality=self.quality,
            checkpoint=self.checkpoint,
            device=self.device,
            threads=self.threads,
            onednn=self.onednn,
            teacher=self.teacher,
            resize=self.resize,
            backend=self.backend,
            onnx_cache=self.onnx_cache,
        )

    def create_codec(self) -> Codec:
        """Import the ``plugins`` modules, then build the configured codec (ValueError says why
        not)."""
        from hecsb_ros.core.codecs import create_codec, load_codec_modules

        # plugins only: codec_class imports the built-in module that has the codec
        load_codec_modules(
            [m.strip() for m in self.plugins.split(",") if m.strip()], builtin=False
        )
        return create_codec(self.codec, self.codec_settings())


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

    def __init__(
        self, node_name: str, params: tuple[Param, ...], config_cls: type, **node_kwargs: Any
    ) -> None:
        super().__init__(node_name, **node_kwargs)
        self._state = "unconfigured"  # kept by the transition callbacks: see lifecycle_state
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
    # Each calls LifecycleNode's own callback too, which runs the transition on the node's managed
    # entities (lifecycle publishers are enabled by its on_activate, disabled by its
    # on_deactivate), and records the state the transition leads to.
    def _reached(
        self, result: TransitionCallbackReturn, success: str, failure: str
    ) -> TransitionCallbackReturn:
        if result == SUCCESS:
            self._state = success
        elif result == FAILURE:
            self._state = failure
        else:
            self._state = "errorprocessing"  # on_error decides where it goes
        return result

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._reached(self._configure(state), "inactive", "unconfigured")

    def _configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            problems = parameter_problems(self, self._params)
            if problems:
                raise ValueError("invalid parameters: " + "; ".join(problems))
            self.cfg = read_config(self, self._params, self._config_cls)
            self.codec = self.cfg.create_codec()
            self._setup()
            result = super().on_configure(state)
            if result != SUCCESS:
                raise RuntimeError(f"a managed entity returned {result.to_label()}")
        # every configure error is a failed transition with its reason
        except Exception as exc:  # noqa: BLE001
            self._release()
            reason = (
                str(exc)
                if isinstance(exc, (ValueError, FileNotFoundError))
                else f"{type(exc).__name__}: {exc}"
            )
            self.last_error = reason
            self.get_logger().error(f"configure failed: {reason}")
            self._diag.publish(
                ERROR,
                f"configure failed: {reason}",
                {"lifecycle": "unconfigured", "error": reason},
            )
            return FAILURE
        self.last_error = ""
        codec = self.codec
        self.get_logger().info(
            f"configured: loaded codec {codec.name} (quality {codec.quality}, "
            f"model {codec.model_id}) on {self.cfg.device}, "
            f"backend {self.cfg.backend}"
        )
        self._diag.publish(
            OK, "inactive (configured)", {"lifecycle": "inactive", "codec": codec.name}
        )
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._reached(self._activate(state), "active", "inactive")

    def _activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            # managed entities first: publishers are enabled before any subscription can call back
            result = super().on_activate(state)
            if result != SUCCESS:
                raise RuntimeError(f"a managed entity returned {result.to_label()}")
            self._start()
        except Exception as exc:  # noqa: BLE001
            self._stop()
            super().on_deactivate(state)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"activate failed: {self.last_error}")
            return FAILURE
        self.get_logger().info(self._ready_line())
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()  # what is already in the node is finished while its publishers are enabled
        result = super().on_deactivate(state)
        self.get_logger().info("deactivated: processing stopped, codec kept")
        self._diag.publish(
            OK,
            "inactive",
            {"lifecycle": "inactive", "codec": self.codec.name if self.codec else ""},
        )
        return self._reached(result, "inactive", "active")

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_cleanup(state)
        self._release()
        self.get_logger().info("cleaned up: codec released")
        self._diag.publish(OK, "unconfigured", {"lifecycle": "unconfigured"})
        return self._reached(result, "unconfigured", "inactive")

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_shutdown(state)
        self._release()
        return self._reached(result, "finalized", "finalized")

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_error(state)
        self._release()
        return self._reached(result, "unconfigured", "finalized")  # success: back to unconfigured

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
        """Label of the current lifecycle state (unconfigured, inactive, active, finalized), as
        the transition callbacks recorded it (rclpy has no public accessor of the state; other
        nodes ask ``<node>/get_state``)."""
        return self._state


def _guard_change_state_service(node: ManagedCodecNode) -> None:
    """Answer ``success: false`` to a transition the current state does not have.

    Why it stays: Jazzy's rclpy (7.1) raises RCLError from its ``change_state`` service callback
    when a transition the current state does not have is requested by id (as launch_ros sends
    transitions), and the exception ends the node's spin: a wrong request from a lifecycle manager
    would stop the node. Kilted's rclpy answers ``success: false`` itself (there the wrapper never
    catches anything). rclpy offers no hook for it, so the service's callback (a public attribute
    of the public ``Node.services``) is wrapped. test_lifecycle.py's
    test_an_unavailable_transition_by_id_is_refused_without_ending_the_spin shows rclpy's own
    callback raising on Jazzy and this one answering on both.
    """
    from lifecycle_msgs.srv import ChangeState

    srv = next((s for s in node.services if s.srv_type is ChangeState), None)
    if srv is None:  # the node was made without its lifecycle services
        return
    inner = srv.callback

    def change_state(request: Any, response: Any) -> Any:
        try:
            return inner(request, response)
        # rclpy's RCLError for a transition not available now
        except Exception as exc:  # noqa: BLE001
            transition = request.transition.label or request.transition.id
            node.get_logger().error(
                f"transition {transition} refused in state {node.lifecycle_state}: {exc}"
            )
            response.success = False
            return response

    srv.callback = change_state
