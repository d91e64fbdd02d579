"""The split-inference node set, described once (ROS-free).

``launch/split_inference.launch.py`` turns it into ``launch_ros`` actions; ``hecsb_demo``
(:mod:`hecsb_ros.cli.run_demo`) starts the same nodes as processes through the process runner on
machines without ``ros2 launch``. Edge and server are managed (lifecycle) nodes: by default
(``lifecycle: true``) both bring them to active in :data:`START_ORDER` (server, then edge) before
the camera source starts. Topics (relative, so namespaces and remapping work):

    camera_source: image_raw (or image_raw/compressed), image_raw/ground_truth
    edge:          image_raw (or image_raw/compressed) -> latent;   classification -> edge_stats
    link_emulator: latent -> latent_shaped
    server:        latent_shaped -> classification, link_stats
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from hecsb_ros.core.link import PRESETS

# : The environment variable through which Fast DDS 3 (Kilted) loads an XML profile in every
# process.
FASTDDS_PROFILE_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"
#: Fast DDS 2.x (Humble, Jazzy) reads only this name, Fast DDS 3 only the one above: both are set.
FASTRTPS_PROFILE_VAR = "FASTRTPS_DEFAULT_PROFILES_FILE"
PROFILE_VARS = (FASTDDS_PROFILE_VAR, FASTRTPS_PROFILE_VAR)
PROFILE_NAME = "fastdds_profile.xml"


def fastdds_profile() -> Path:
    """The shipped Fast DDS profile (a 32 MiB shared-memory segment beside the builtin UDPv4
    transport, so that camera frames of 640x480 and more reach other processes): ``config/`` of
    this checkout, else ``share/hecsb_ros/config/`` of the installation (ament index), else the
    path the first would have."""
    here = Path(__file__).resolve()
    candidates = [here.parents[1] / "config" / PROFILE_NAME]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("hecsb_ros")) / "config" / PROFILE_NAME)
    except Exception:  # noqa: BLE001 - no ament index (AMENT_PREFIX_PATH unset) or not installed
        pass
    if len(here.parents) > 4:  # installed: <prefix>/lib/python3.X/site-packages/hecsb_ros/graph.py
        candidates.append(here.parents[4] / "share" / "hecsb_ros" / "config" / PROFILE_NAME)
    return next((c for c in candidates if c.is_file()), candidates[0])


# : glibc malloc settings of the edge's process (it takes camera frames): buffers up to 32 MiB
# served : from the heap and freed heap kept, instead of three frame-sized buffers mapped, zeroed
# and unmapped : per message. Measured (benchmarks/frames): edge CPU per 1280x720 frame 10.8-11.2
# -> 7.6-7.7 ms, : capture->result p50 15-16 -> 12 ms, RSS +6-8 MiB; no change at 640x480.
EDGE_ENV: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "268435456",
}


def profile_setting(env: Mapping[str, str]) -> str | None:
    """The profile the user chose in ``env``: ``FASTDDS_DEFAULT_PROFILES_FILE`` if set, else
    ``FASTRTPS_DEFAULT_PROFILES_FILE`` if set ('' = none on purpose), else None (not chosen)."""
    for var in PROFILE_VARS:
        if var in env:
            return env[var]
    return None


def profile_exports(path: str | Path) -> str:
    """The shell line that gives a process ``path`` as its Fast DDS profile, on every
    distribution."""
    return "export " + " ".join(f"{var}={path}" for var in PROFILE_VARS)


def fastdds_profile_problem(env: Mapping[str, str]) -> str | None:
    """What is wrong with the Fast DDS profile setting in ``env`` and what to do, or None.

    Unset: frames of 640x480 and more published by this process are lost in other processes. Set to
    a missing file: Fast DDS only logs an XML parser error and runs on its defaults (the same
    loss). Set to an empty value: the profile is turned off on purpose (no problem reported).
    """
    value = profile_setting(env)
    fix = profile_exports(fastdds_profile())
    if value is None:
        return (
            f"{FASTDDS_PROFILE_VAR} is not set: camera frames of 640x480 and more that this "
            "process publishes "
            f"do not reach other processes (Fast DDS's 512 KiB shared-memory segment); {fix}"
        )
    if value and not Path(value).is_file():
        return (
            f"{FASTDDS_PROFILE_VAR}={value} does not exist, so Fast DDS runs on its defaults "
            "and camera frames "
            f"of 640x480 and more are lost between processes; {fix} (or unset it for the "
            "defaults)"
        )
    return None


def dds_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the shipped Fast DDS profile unless the caller chose one, under both variable
    names (Fast DDS 3 of Kilted reads ``FASTDDS_DEFAULT_PROFILES_FILE``, Fast DDS 2.x of Humble and
    Jazzy ``FASTRTPS_DEFAULT_PROFILES_FILE``); an empty value means "no profile" and both are
    removed (Fast DDS would log an XML parser error for the empty path)."""
    out = dict(env)
    chosen = profile_setting(env)
    value = str(fastdds_profile()) if chosen is None else chosen
    for var in PROFILE_VARS:
        if value:
            out.setdefault(var, value)
        else:
            out.pop(var, None)
    return out


@dataclass(frozen=True)
class NodeSpec:
    """One node: its ROS name, installed executable, Python module, parameters and remappings."""

    key: str  # role: camera_source, edge, link_emulator, server
    name: str  # ROS node name
    executable: str  # lib/hecsb_ros/<executable> for launch_ros
    module: str  # python -m <module> for the process runner
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    # its process's environment, where the user's has none
    env: dict[str, str] = field(default_factory=dict)
    # a lifecycle node that a manager configures and activates (autostart off)
    managed: bool = False
    namespace: str = ""  # a fleet's robot (its nodes' topics resolve under /<namespace>/)

    @property
    def role(self) -> str:
        """camera_source, edge, link_emulator or server (a fleet's keys are ``<robot>/<role>``)."""
        return self.key.rsplit("/", 1)[-1]

    @property
    def path(self) -> str:
        """The node's name with its namespace (``robot1/hecsb_edge``): where its services are."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


# : Order in which the launch file and the runner bring the nodes up: the server active first, then
# the : edge (both configured = codec loaded, then activated = subscribed), the link emulator
# before the edge : sends, the camera source last, once the chain downstream of it is active.
START_ORDER: tuple[str, ...] = ("server", "link_emulator", "edge", "camera_source")


#: Launch arguments: name -> (default, description). '' means "leave the node's default".
LAUNCH_ARGUMENTS: dict[str, tuple[str, str]] = {
    "codec": ("", "Codec for edge and server (hecsb, png, jpeg, webp, raw); '' = default"),
    "quality": ("", "Codec quality or rate level; '' = the codec's default"),
    "profile": ("4g", f"Link profile: {', '.join(PRESETS)}"),
    "source": (
        "dataset",
        "Frame source: dataset, folder, video, camera (dataset with a "
        "camera-scale teacher: the "
        "photos of Debian's opencv-doc package)",
    ),
    "path": ("", "Image folder or video file for source=folder/video"),
    "frames": ("0", "Frames to publish; 0 = until stopped"),
    "rate_hz": ("", "Camera frame rate; '' = default"),
    "device": ("", "Torch device for edge and server: cpu or cuda; '' = cpu"),
    "backend": (
        "",
        "Runtime of the networks of edge and server: onnxruntime (CPU) or torch "
        "(needed for "
        "device:=cuda); '' = the nodes' default (onnxruntime)",
    ),
    "checkpoint": (
        "",
        "Bottleneck (or classifier) checkpoint for edge and server; '' = the shipped one",
    ),
    "teacher": (
        "",
        "Classifier the bottleneck was trained for (e.g. local ResNet-50 weights "
        ".pth); '' = shipped",
    ),
    "resize": (
        "",
        "Resize policy of edge and server: squash, center_crop, letterbox; '' = the teacher's own",
    ),
    "input": (
        "",
        "Camera frames between camera and edge: raw (sensor_msgs/Image on image_raw) or "
        "compressed "
        "(sensor_msgs/CompressedImage on image_raw/compressed); '' = raw",
    ),
    "params_file": ("", "YAML parameter file applied to all nodes (node names as keys, or /**)"),
    "link": ("true", "Insert the link emulator between edge and server"),
    "lifecycle": (
        "true",
        "Edge and server as managed (lifecycle) nodes brought to active in "
        "order (server, edge), "
        "then the camera source starts; false: plain nodes that start at once "
        "(the camera then "
        "waits for the pipeline's subscribers, wait_for_topics)",
    ),
    "robots": (
        "",
        "A fleet: comma-separated robot namespaces (robot1,robot2); each robot gets "
        "its own camera "
        "source, edge (and link emulator) under /<robot>/, and one server answers each "
        "on "
        "/<robot>/classification; groups separated by ';' get a server each "
        "(robot1,robot2;robot3: "
        "hecsb_server_1 for the first two, hecsb_server_2 for robot3); '' = one robot, "
        "no namespace",
    ),
}


def _set(params: dict[str, Any], key: str, value: str, kind: type) -> None:
    if value != "":
        params[key] = kind(value)


def split_inference_nodes(
    codec: str = "",
    quality: str = "",
    profile: str = "4g",
    source: str = "dataset",
    path: str = "",
    frames: str = "0",
    rate_hz: str = "",
    device: str = "",
    checkpoint: str = "",
    teacher: str = "",
    params_file: str = "",
    link: str = "true",
    resize: str = "",
    input: str = "",
    lifecycle: str = "true",
    robots: str = "",
    backend: str = "",
) -> list[NodeSpec]:
    """Describe the node set for the given launch arguments (all strings, as launch passes them).

    ``params_file`` is not applied here: the caller passes it to every node before these values.
    ``robots`` (a fleet) repeats camera source, edge and link emulator per robot namespace, keyed
    ``<robot>/<role>``, and gives the one server the robots (see :func:`fleet_nodes`).
    """
    del params_file
    if robots.strip():
        single = split_inference_nodes(
            codec,
            quality,
            profile,
            source,
            path,
            frames,
            rate_hz,
            device,
            checkpoint,
            teacher,
            "",
            link,
            resize,
            input,
            lifecycle,
            backend=backend,
        )
        return fleet_nodes(single, robots)
    if profile not in PRESETS:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PRESETS)}")
    if input not in ("", "raw", "compressed"):
        raise ValueError(f"unknown input {input!r}; use raw or compressed")
    codec_params: dict[str, Any] = {}
    _set(codec_params, "codec", codec, str)
    _set(codec_params, "quality", quality, int)
    _set(codec_params, "device", device, str)
    _set(codec_params, "backend", backend, str)
    _set(codec_params, "checkpoint", checkpoint, str)
    _set(codec_params, "teacher", teacher, str)
    _set(codec_params, "resize", resize, str)
    if source == "dataset" and camera_scale(teacher):
        # Fashion-MNIST means nothing to an ImageNet teacher: play real photos instead
        from hecsb_ros.core.sources import SAMPLE_PHOTOS

        source, path = "folder", path or str(SAMPLE_PHOTOS)
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"teacher {teacher!r} is a camera-scale teacher and source:=dataset plays the "
                "sample photos of "
                f"Debian's opencv-doc package ({path}): install them (sudo apt-get install "
                "opencv-doc), or name "
                "photos with source:=folder path:=DIR, a video with source:=video path:=FILE, or "
                "source:=camera"
            )
    camera: dict[str, Any] = {"source": source}
    edge = dict(codec_params)
    if input:
        edge["input"] = input
        camera["output"] = input
    _set(camera, "path", path, str)
    _set(camera, "frames", frames, int)
    _set(camera, "rate_hz", rate_hz, float)
    with_link = _flag(link, "link")
    managed = _flag(lifecycle, "lifecycle")
    server = dict(codec_params)
    if managed:  # configured and activated by the launch file / runner, in START_ORDER
        edge["autostart"] = server["autostart"] = False
    else:
        # plain nodes start at once: the camera waits until the edge -> (link ->) server chain is
        # subscribed
        camera["wait_for_topics"] = "latent,latent_shaped" if with_link else "latent"
    nodes = [
        NodeSpec(
            "camera_source",
            "hecsb_camera_source",
            "hecsb_camera_source",
            "hecsb_ros.nodes.camera_source",
            camera,
        ),
        NodeSpec(
            "edge",
            "hecsb_edge",
            "hecsb_edge",
            "hecsb_ros.nodes.edge",
            edge,
            env=dict(EDGE_ENV),
            managed=managed,
        ),
    ]
    if with_link:
        nodes.append(
            NodeSpec(
                "link_emulator",
                "hecsb_link_emulator",
                "hecsb_link_emulator",
                "hecsb_ros.nodes.link_emulator",
                {"profile": profile},
                (("latent_in", "latent"), ("latent_out", "latent_shaped")),
            )
        )
    nodes.append(
        NodeSpec(
            "server",
            "hecsb_server",
            "hecsb_server",
            "hecsb_ros.nodes.server",
            server,
            (("latent", "latent_shaped"),) if with_link else (),
            managed=managed,
        )
    )
    return nodes


def camera_scale(teacher: str) -> bool:
    """Whether the ``teacher`` setting names a camera-scale (ImageNet) teacher, i.e. not the
    shipped Fashion-MNIST one ('' is that one; the registry is imported only for another setting).
    """
    if not teacher.strip():
        return False
    from hecsb_ros.core.teachers import resolve_teacher

    return resolve_teacher(teacher).teacher.tag != "fmnist"


def robot_namespaces(text: str) -> list[str]:
    """``"robot1, /robot2/"`` -> ``["robot1", "robot2"]``; a namespace listed twice is refused (a
    fleet's ``;`` between servers' groups counts as a comma here: every robot of the fleet)."""
    names = [
        part.strip().strip("/")
        for part in text.replace(";", ",").split(",")
        if part.strip().strip("/")
    ]
    if len(set(names)) != len(names):
        raise ValueError(f"robots lists a namespace twice: {text!r}")
    bad = [n for n in names if not all(c.isalnum() or c == "_" for c in n) or n[0].isdigit()]
    if bad:
        raise ValueError(
            "robot namespaces must be ROS names (letters, digits, _; not starting "
            f"with a digit): {bad}"
        )
    return names


def robot_groups(text: str) -> list[list[str]]:
    """``"robot1,robot2; robot3"`` -> ``[["robot1", "robot2"], ["robot3"]]``: one server per
    group."""
    robot_namespaces(text)  # every robot once, every name valid
    return [group for group in (robot_namespaces(part) for part in text.split(";")) if group]


def fleet_nodes(single: list[NodeSpec], robots: str) -> list[NodeSpec]:
    """One robot's node set -> a fleet's: camera source, edge and link emulator once per robot, in
    its namespace (their relative topics resolve under /<robot>/), and one server whose ``robots``
    parameter lists them; behind link emulators the server reads /<robot>/latent_shaped. Groups of
    robots separated by ``;`` get a server each (``hecsb_server_1``, ``hecsb_server_2``, ...; keys
    ``server1/server``, ...), started before every edge."""
    groups = robot_groups(robots)
    if not groups:
        raise ValueError(f"robots {robots!r} names no robot namespace")
    out: list[NodeSpec] = []
    for robot in (r for group in groups for r in group):
        out += [
            replace(spec, key=f"{robot}/{spec.key}", namespace=robot)
            for spec in single
            if spec.key != "server"
        ]
    server = next(spec for spec in single if spec.key == "server")
    for k, group in enumerate(groups, start=1):
        remap = (
            tuple((f"/{r}/latent", f"/{r}/latent_shaped") for r in group)
            if server.remappings
            else ()
        )
        named = (
            {} if len(groups) == 1 else {"key": f"server{k}/server", "name": f"{server.name}_{k}"}
        )
        out.append(
            replace(
                server,
                parameters={**server.parameters, "robots": ",".join(group)},
                remappings=remap,
                **named,
            )
        )
    return out


def _flag(value: str, name: str) -> bool:
    """A launch argument's boolean (true/false, 1/0, yes/no, any case)."""
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")
