"""The launch file builds its nodes from hecsb_ros.graph, the description the demo runner uses, and
brings the lifecycle nodes up in order with launch_ros's LifecycleNode, ChangeState events and
OnStateTransition handlers.

ros2 launch is not installable here, so ``launch``/``launch_ros`` are replaced by recording
stand-ins, the launch file's own code is executed with them and the recorded description is played
back.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from hecsb_ros.runner import node_command
from hecsb_ros.graph import LAUNCH_ARGUMENTS, split_inference_nodes

pytestmark = [pytest.mark.ros, pytest.mark.quick]

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "split_inference.launch.py"


class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _SetEnvironmentVariable(_Recorder):
    pass


class _UnsetEnvironmentVariable(_SetEnvironmentVariable):
    pass


class _Node(_Recorder):
    pass


class _LifecycleNode(_Node):
    pass


class _EmitEvent(_Recorder):
    pass


class _RegisterEventHandler(_Recorder):
    pass


class _OnStateTransition(_Recorder):
    pass


class _ChangeState(_Recorder):
    pass


class _Shutdown(_Recorder):
    pass


class _LogInfo(_Recorder):
    pass


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


@pytest.fixture()
def launch_module(monkeypatch):
    launch = types.ModuleType("launch")
    launch.LaunchDescription = _Recorder
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = _Recorder
    actions.OpaqueFunction = _Recorder
    actions.SetEnvironmentVariable = _SetEnvironmentVariable
    actions.UnsetEnvironmentVariable = _UnsetEnvironmentVariable
    actions.EmitEvent = _EmitEvent
    actions.RegisterEventHandler = _RegisterEventHandler
    actions.LogInfo = _LogInfo
    events = types.ModuleType("launch.events")
    events.Shutdown = _Shutdown
    events.matches_action = lambda action: ("matches", action)
    subs = types.ModuleType("launch.substitutions")
    subs.LaunchConfiguration = _LaunchConfiguration
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = _Node
    ros_actions.LifecycleNode = _LifecycleNode
    handlers = types.ModuleType("launch_ros.event_handlers")
    handlers.OnStateTransition = _OnStateTransition
    ros_events = types.ModuleType("launch_ros.events")
    lifecycle_events = types.ModuleType("launch_ros.events.lifecycle")
    lifecycle_events.ChangeState = _ChangeState
    for name, mod in {
        "launch": launch,
        "launch.actions": actions,
        "launch.events": events,
        "launch.substitutions": subs,
        "launch_ros": launch_ros,
        "launch_ros.actions": ros_actions,
        "launch_ros.event_handlers": handlers,
        "launch_ros.events": ros_events,
        "launch_ros.events.lifecycle": lifecycle_events,
    }.items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("split_inference_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(launch_module, **overrides):
    desc = launch_module.generate_launch_description()
    entities = desc.args[0]
    declared = {e.kwargs.get("name", e.args[0] if e.args else None): e for e in entities[:-1]}
    opaque = entities[-1]
    context = {name: default for name, (default, _) in LAUNCH_ARGUMENTS.items()}
    context.update(overrides)
    actions = opaque.kwargs["function"](context)
    env = [a for a in actions if isinstance(a, _SetEnvironmentVariable)]
    assert actions[: len(env)] == env  # environment first: it applies to the nodes after it
    return declared, actions[len(env) :], env


def _path(action) -> str:
    """A node action's name with its namespace (``robot1/hecsb_edge``)."""
    ns = action.kwargs.get("namespace", "")
    return f"{ns}/{action.kwargs['name']}" if ns else action.kwargs["name"]


class _Launch:
    """Plays a recorded launch description as ros2 launch would: actions in order, lifecycle
    transitions (ChangeState events) answered with ``fails`` (node name -> transition label that
    fails), and the event handlers that match each state change. Records what happens, in order."""

    LABELS = {
        1: ("configure", "configuring", "inactive", "unconfigured"),
        3: ("activate", "activating", "active", "inactive"),
    }

    def __init__(self, actions, fails=None):
        self.fails = fails or {}
        self.handlers = []
        self.started = []  # Node actions in the order their processes start
        self.log = []  # "start NAME", "configure NAME", "activate NAME", "shutdown"
        self.state = {}
        for action in actions:
            self.run(action)

    def run(self, action):
        if isinstance(action, _Node):
            self.started.append(action)
            self.log.append(f"start {_path(action)}")
            if isinstance(action, _LifecycleNode):
                self.state[id(action)] = "unconfigured"
        elif isinstance(action, _RegisterEventHandler):
            self.handlers.append(action.args[0] if action.args else action.kwargs["event_handler"])
        elif isinstance(action, _EmitEvent):
            event = action.kwargs["event"]
            if isinstance(event, _Shutdown):
                self.log.append("shutdown")
                return
            _, target = event.kwargs["lifecycle_node_matcher"]
            label, during, goal, back = self.LABELS[event.kwargs["transition_id"]]
            assert self.state.get(id(target)) == (
                "unconfigured" if label == "configure" else "inactive"
            )
            name = _path(target)
            self.log.append(f"{label} {name}")
            end = back if self.fails.get(name) == label else goal
            self.state[id(target)] = end
            for handler in list(self.handlers):
                kw = handler.kwargs
                if (
                    kw["target_lifecycle_node"] is target
                    and kw["start_state"] == during
                    and kw["goal_state"] == end
                ):
                    assert kw.get("handle_once"), (
                        "a later manual transition must not start nodes again"
                    )
                    self.handlers.remove(handler)
                    for entity in kw["entities"]:
                        self.run(entity)
        elif not isinstance(action, _LogInfo):
            raise AssertionError(f"unexpected action {action!r}")


def _nodes_of(launch_module, **overrides):
    """The node actions in the order their processes start."""
    _, actions, _ = _run(launch_module, **overrides)
    return _Launch(actions).started


def test_every_launch_argument_is_declared_with_a_description(launch_module):
    declared, _, _ = _run(launch_module)
    assert set(declared) == set(LAUNCH_ARGUMENTS)
    assert all(e.kwargs["description"] for e in declared.values())


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"codec": "jpeg", "quality": "30", "profile": "wifi"},
        {"link": "false", "params_file": "/tmp/p.yaml"},
        {"lifecycle": "false"},
    ],
)
def test_launch_nodes_equal_the_shared_description(launch_module, overrides):
    nodes = _nodes_of(launch_module, **overrides)
    context = {name: default for name, (default, _) in LAUNCH_ARGUMENTS.items()}
    context.update(overrides)
    specs = {s.name: s for s in split_inference_nodes(**context)}
    assert sorted(n.kwargs["name"] for n in nodes) == sorted(specs)
    for node in nodes:
        spec = specs[node.kwargs["name"]]
        assert node.kwargs["package"] == "hecsb_ros"
        assert node.kwargs["executable"] == spec.executable
        assert node.kwargs["remappings"] == list(spec.remappings)
        assert node.kwargs["parameters"][-1] == spec.parameters
        assert isinstance(node, _LifecycleNode) == spec.managed
        if spec.managed:
            assert node.kwargs["namespace"] == "" and spec.parameters["autostart"] is False
        if overrides.get("params_file"):
            assert node.kwargs["parameters"][0] == overrides["params_file"]


@pytest.mark.parametrize("link", ["true", "false"])
def test_lifecycle_nodes_come_up_in_order_before_the_camera_starts(launch_module, link):
    """server configured, activated; then the edge; the camera's process only once the edge is
    active."""
    _, actions, _ = _run(launch_module, link=link)
    played = _Launch(actions)
    others = ["start hecsb_link_emulator"] if link == "true" else []
    assert played.log == [
        "start hecsb_server",
        *others,
        "start hecsb_edge",
        "configure hecsb_server",
        "activate hecsb_server",
        "configure hecsb_edge",
        "activate hecsb_edge",
        "start hecsb_camera_source",
    ]
    assert not [
        n
        for n in played.started
        if n.kwargs["name"] == "hecsb_camera_source"
        and "wait_for_topics" in n.kwargs["parameters"][-1]
    ]  # no custom wait needed


def test_a_fleet_gets_one_server_and_a_camera_edge_and_link_per_robot_in_its_namespace(
    launch_module,
):
    """robots:=robot1,robot2: the server first, each robot's edge configured and activated in turn,
    the cameras only after the last edge is active; the server reads each robot's shaped latents.
    """
    _, actions, _ = _run(launch_module, robots="robot1,robot2")
    played = _Launch(actions)
    assert played.log == [
        "start hecsb_server",
        "start robot1/hecsb_link_emulator",
        "start robot2/hecsb_link_emulator",
        "start robot1/hecsb_edge",
        "start robot2/hecsb_edge",
        "configure hecsb_server",
        "activate hecsb_server",
        "configure robot1/hecsb_edge",
        "activate robot1/hecsb_edge",
        "configure robot2/hecsb_edge",
        "activate robot2/hecsb_edge",
        "start robot1/hecsb_camera_source",
        "start robot2/hecsb_camera_source",
    ]
    server = next(n for n in played.started if n.kwargs["name"] == "hecsb_server")
    assert server.kwargs["parameters"][-1]["robots"] == "robot1,robot2"
    assert server.kwargs["remappings"] == [
        ("/robot1/latent", "/robot1/latent_shaped"),
        ("/robot2/latent", "/robot2/latent_shaped"),
    ]
    edge = next(n for n in played.started if _path(n) == "robot2/hecsb_edge")
    assert edge.kwargs["remappings"] == [] and isinstance(edge, _LifecycleNode)
    with pytest.raises(ValueError, match="twice"):
        _run(launch_module, robots="robot1,robot1")


def test_groups_of_robots_get_a_server_each_started_before_every_edge(launch_module):
    """robots:=robot1,robot2;robot3: hecsb_server_1 serves the first two, hecsb_server_2 the
    third."""
    _, actions, _ = _run(launch_module, robots="robot1,robot2;robot3")
    played = _Launch(actions)
    assert played.log[:6] == [
        "start hecsb_server_1",
        "start hecsb_server_2",
        "start robot1/hecsb_link_emulator",
        "start robot2/hecsb_link_emulator",
        "start robot3/hecsb_link_emulator",
        "start robot1/hecsb_edge",
    ]
    configured = [entry for entry in played.log if entry.startswith(("configure", "activate"))]
    assert configured[:4] == [
        "configure hecsb_server_1",
        "activate hecsb_server_1",
        "configure hecsb_server_2",
        "activate hecsb_server_2",
    ]
    assert played.log[-3:] == [
        "start robot1/hecsb_camera_source",
        "start robot2/hecsb_camera_source",
        "start robot3/hecsb_camera_source",
    ]
    servers = {
        n.kwargs["name"]: n for n in played.started if n.kwargs["name"].startswith("hecsb_server")
    }
    assert servers["hecsb_server_1"].kwargs["parameters"][-1]["robots"] == "robot1,robot2"
    assert servers["hecsb_server_2"].kwargs["parameters"][-1]["robots"] == "robot3"
    assert servers["hecsb_server_2"].kwargs["remappings"] == [
        ("/robot3/latent", "/robot3/latent_shaped")
    ]
    for bad in ("robot1;robot1", ";"):
        with pytest.raises(ValueError, match="twice|no robot"):
            _run(launch_module, robots=bad)


@pytest.mark.parametrize("failing", ["hecsb_server", "hecsb_edge"])
def test_a_failed_configure_ends_the_launch_and_starts_nothing_after_it(launch_module, failing):
    _, actions, _ = _run(launch_module)
    played = _Launch(actions, fails={failing: "configure"})
    assert played.log[-2:] == [f"configure {failing}", "shutdown"]
    assert "start hecsb_camera_source" not in played.log
    assert "activate " + failing not in played.log


def test_plain_nodes_start_at_once_and_the_camera_waits_for_the_pipeline(launch_module):
    _, actions, _ = _run(launch_module, lifecycle="false")
    assert all(isinstance(a, _Node) and not isinstance(a, _LifecycleNode) for a in actions)
    camera = next(a for a in actions if a.kwargs["name"] == "hecsb_camera_source")
    assert camera.kwargs["parameters"][-1]["wait_for_topics"] == "latent,latent_shaped"


def test_nodes_get_the_fast_dds_profile_unless_one_is_set(launch_module, monkeypatch):
    from hecsb_ros.graph import FASTDDS_PROFILE_VAR, FASTRTPS_PROFILE_VAR, fastdds_profile

    for var in (FASTDDS_PROFILE_VAR, FASTRTPS_PROFILE_VAR):
        monkeypatch.delenv(var, raising=False)
    _, _, env = _run(launch_module)
    shipped = str(fastdds_profile())
    assert [e.args for e in env] == [
        (FASTDDS_PROFILE_VAR, shipped),
        (FASTRTPS_PROFILE_VAR, shipped),
    ]
    assert fastdds_profile().is_file() and fastdds_profile().name == "fastdds_profile.xml"
    # the user's own profile, for Jazzy too
    monkeypatch.setenv(FASTDDS_PROFILE_VAR, "/opt/my_profile.xml")
    assert [e.args for e in _run(launch_module)[2]] == [
        (FASTRTPS_PROFILE_VAR, "/opt/my_profile.xml")
    ]
    monkeypatch.setenv(FASTRTPS_PROFILE_VAR, "/opt/my_profile.xml")
    assert _run(launch_module)[2] == []
    monkeypatch.setenv(FASTDDS_PROFILE_VAR, "")  # none on purpose: unset, Fast DDS's defaults
    unset = _run(launch_module)[2]
    assert all(isinstance(u, _UnsetEnvironmentVariable) for u in unset)
    assert [u.args for u in unset] == [(FASTDDS_PROFILE_VAR,), (FASTRTPS_PROFILE_VAR,)]


def test_the_edge_gets_its_malloc_settings_unless_the_user_has_them(launch_module, monkeypatch):
    from hecsb_ros.graph import EDGE_ENV

    for name in EDGE_ENV:
        monkeypatch.delenv(name, raising=False)
    nodes = {n.kwargs["name"]: n for n in _nodes_of(launch_module)}
    assert nodes["hecsb_edge"].kwargs["additional_env"] == EDGE_ENV
    assert all(
        "additional_env" not in n.kwargs for name, n in nodes.items() if name != "hecsb_edge"
    )
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    edge = {n.kwargs["name"]: n for n in _nodes_of(launch_module)}["hecsb_edge"]
    assert edge.kwargs["additional_env"] == {
        "MALLOC_TRIM_THRESHOLD_": EDGE_ENV["MALLOC_TRIM_THRESHOLD_"]
    }


def test_description_wires_the_topics():
    specs = {s.key: s for s in split_inference_nodes(codec="png", profile="5g")}
    assert list(specs) == ["camera_source", "edge", "link_emulator", "server"]
    assert dict(specs["link_emulator"].remappings) == {
        "latent_in": "latent",
        "latent_out": "latent_shaped",
    }
    assert dict(specs["server"].remappings) == {"latent": "latent_shaped"}
    assert (
        specs["edge"].parameters
        == specs["server"].parameters
        == {"codec": "png", "autostart": False}
    )
    assert specs["edge"].managed and specs["server"].managed and not specs["camera_source"].managed
    assert specs["link_emulator"].parameters == {"profile": "5g"}
    direct = {s.key: s for s in split_inference_nodes(link="false")}
    assert "link_emulator" not in direct and direct["server"].remappings == ()


def test_input_and_resize_reach_camera_edge_and_server():
    specs = {
        s.key: s
        for s in split_inference_nodes(
            input="compressed", resize="center_crop", codec="jpeg_frame"
        )
    }
    assert specs["camera_source"].parameters["output"] == "compressed"
    assert specs["edge"].parameters == {
        "codec": "jpeg_frame",
        "resize": "center_crop",
        "input": "compressed",
        "autostart": False,
    }
    assert specs["server"].parameters == {
        "codec": "jpeg_frame",
        "resize": "center_crop",
        "autostart": False,
    }
    plain = {s.key: s for s in split_inference_nodes()}
    assert (
        "output" not in plain["camera_source"].parameters
        and "input" not in plain["edge"].parameters
    )
    with pytest.raises(ValueError, match="unknown input"):
        split_inference_nodes(input="h264")


def test_a_camera_scale_teacher_plays_real_photos_instead_of_fashion_mnist(tmp_path, monkeypatch):
    import hecsb_ros.core.sources as sources

    monkeypatch.setattr(sources, "SAMPLE_PHOTOS", tmp_path)
    specs = {s.key: s for s in split_inference_nodes(teacher="efficientnet_lite0")}
    assert specs["camera_source"].parameters == {
        "source": "folder",
        "path": str(tmp_path),
        "frames": 0,
    }
    assert (
        specs["edge"].parameters["teacher"]
        == specs["server"].parameters["teacher"]
        == "efficientnet_lite0"
    )
    # a folder, video or camera the user names is kept, and the Fashion-MNIST teacher keeps its
    # data set
    named = {
        s.key: s for s in split_inference_nodes(teacher="efficientnet_lite0", source="camera")
    }
    assert named["camera_source"].parameters == {"source": "camera", "frames": 0}
    assert {s.key: s for s in split_inference_nodes()}["camera_source"].parameters == {
        "source": "dataset",
        "frames": 0,
    }
    monkeypatch.setattr(sources, "SAMPLE_PHOTOS", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install opencv-doc"):
        split_inference_nodes(teacher="efficientnet-lite0")


def test_unknown_profile_fails_early():
    with pytest.raises(ValueError, match="unknown profile"):
        split_inference_nodes(profile="3g")
    with pytest.raises(ValueError, match="lifecycle must be true or false"):
        split_inference_nodes(lifecycle="maybe")


def test_start_order_is_server_then_edge_then_camera():
    from hecsb_ros.graph import START_ORDER

    assert START_ORDER == ("server", "link_emulator", "edge", "camera_source")
    assert set(START_ORDER) == {s.key for s in split_inference_nodes()}


def test_runner_command_uses_the_same_names_and_remappings():
    spec = {s.key: s for s in split_inference_nodes()}["server"]
    cmd = node_command(spec, ["/a.yaml", "/b.yaml"])
    assert cmd[1:3] == ["-m", "hecsb_ros.nodes.server"]
    assert "__node:=hecsb_server" in cmd and "latent:=latent_shaped" in cmd
    assert cmd.index("/a.yaml") < cmd.index("/b.yaml")


def test_installed_executables_exist_for_every_node():
    root = LAUNCH_FILE.parents[1]
    cmake = (root / "CMakeLists.txt").read_text()
    for spec in split_inference_nodes():
        script = root / "scripts" / "nodes" / spec.executable
        assert script.exists() and spec.executable in cmake
        assert f"from {spec.module} import main" in script.read_text()
