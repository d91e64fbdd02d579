"""Every ROS parameter of every node, declared once (ROS-free, so tests and tools can read it).

Nodes turn these into ``ParameterDescriptor`` objects (description, range, read_only) and read
them into frozen dataclasses; runtime changes are checked by :func:`check_value`. The YAML files in
``config/`` repeat the defaults for users; a test keeps them in agreement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hecsb_ros.core.link import PRESETS

DEFAULT_CODEC = "hecsb"
#: Runtimes of the codecs' networks (hecsb_ros.core.onnx_runtime.BACKENDS) and the nodes' default
#: (benchmarks/backend_onnx/README.md has the measurement it rests on).
BACKENDS = ("torch", "onnxruntime")
DEFAULT_BACKEND = "onnxruntime"
#: What a node does with frames that arrive while it is busy (parameter ``queue_policy``).
QUEUE_POLICIES = ("newest", "fifo")
#: Resize policies (hecsb_ros.core.teachers.spec.RESIZE_POLICIES; '' = the teacher's own).
RESIZE_CHOICES = ("", "squash", "center_crop", "letterbox")


@dataclass(frozen=True)
class Param:
    """One parameter: default (its type is the parameter's type), description, constraints."""

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = False


def check_value(param: Param, value: Any) -> str | None:
    """Return why ``value`` is not acceptable for ``param``, or None when it is."""
    kind = type(param.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        return f"{param.name} must be {kind.__name__}, got {type(value).__name__}"
    if kind is float and not math.isfinite(value):
        return f"{param.name} must be finite"
    if param.min is not None and value < param.min:
        return f"{param.name}={value} is below the minimum {param.min}"
    if param.max is not None and value > param.max:
        return f"{param.name}={value} is above the maximum {param.max}"
    if param.choices is not None and value not in param.choices:
        return f"{param.name}={value!r} is not one of {', '.join(param.choices)}"
    return None


def _codec_params(stats_period: float, runtime_quality: bool = False) -> tuple[Param, ...]:
    quality_note = (
        " Settable at run time ('ros2 param set'): the next frame is encoded at the "
        "new level, "
        "no restart (a server with all_levels decodes every level)"
        if runtime_quality
        else ""
    )
    return (
        Param(
            "codec",
            DEFAULT_CODEC,
            "Codec registry name (hecsb, png, jpeg, webp, raw, ...); edge and server must agree",
            read_only=True,
        ),
        Param(
            "quality",
            -1,
            "Codec quality or rate level; -1 = the codec's default (JPEG/WebP "
            "1-100, "
            "WebP 101 lossless, PNG 0-9, learned codecs: rate-level index)." + quality_note,
            min=-1,
            max=255,
            read_only=not runtime_quality,
        ),
        Param(
            "checkpoint",
            "",
            "Checkpoint file of the classifier/bottleneck; empty = shipped default",
            read_only=True,
        ),
        Param(
            "teacher",
            "",
            "Classifier the bottleneck was trained for (its tail runs on the "
            "server), and the "
            "input codecs' classifier: a registered teacher name (NAME or NAME:WEIGHTS), a "
            "classifier checkpoint "
            "or local torchvision ResNet-50 weights (.pth); empty = the shipped Fashion-MNIST "
            "teacher",
            read_only=True,
        ),
        Param(
            "plugins",
            "",
            "Comma-separated Python modules imported before the codec is "
            "created, whose "
            "@register_codec classes add codecs of one's own (edge and server must load the "
            "same)",
            read_only=True,
        ),
        Param("device", "cpu", "Torch device", choices=("cpu", "cuda"), read_only=True),
        Param(
            "threads",
            1,
            "Intra-op threads of torch and of ONNX Runtime (backend onnxruntime); "
            "0 = their "
            "default",
            min=0,
            max=256,
            read_only=True,
        ),
        Param(
            "onednn",
            False,
            "Run CPU convolutions with oneDNN; off = PyTorch's native kernels, "
            "faster "
            "at batch 1 for the small models (turn on for large inputs such as ResNet-50)",
            read_only=True,
        ),
        Param(
            "backend",
            DEFAULT_BACKEND,
            "Runtime of the codec's networks: onnxruntime (exported "
            "to ONNX on first "
            "use, cached in onnx_cache; needs the onnxruntime and onnx packages) or torch "
            "(PyTorch eager). The "
            "payload is the same for both: edge and server may differ. A change needs a reload "
            "(reconfigure)",
            choices=BACKENDS,
            read_only=True,
        ),
        Param(
            "onnx_cache",
            "",
            "Folder of the exported ONNX files for backend onnxruntime; '' = "
            "$HECSB_ONNX_CACHE, else ~/.cache/hecsb_ros/onnx",
            read_only=True,
        ),
        Param(
            "resize",
            "",
            "How a camera frame of another shape becomes the teacher's input: "
            "squash (whole "
            "frame, aspect ratio not kept), center_crop (the teacher's crop of the centre), "
            "letterbox (whole frame, "
            "black bars); '' = the teacher's own policy, the one its bottlenecks were trained "
            "with (recorded in "
            "their manifests). Edge and server must agree (the server resizes for whole-frame "
            "codecs)",
            choices=RESIZE_CHOICES,
            read_only=True,
        ),
        Param(
            "stats_period_s",
            stats_period,
            "Seconds between LinkStats and /diagnostics messages",
            min=0.1,
            max=3600.0,
        ),
        Param(
            "autostart",
            True,
            "Lifecycle (managed) node: true = configure and activate itself "
            "at start-up, "
            "as a plain node starts; false = wait unconfigured for a lifecycle manager (the "
            "launch file with "
            "lifecycle:=true, the process runner, 'ros2 lifecycle set'): configure loads the "
            "codec, activate "
            "starts processing",
            read_only=True,
        ),
    )


CAMERA_SOURCE: tuple[Param, ...] = (
    Param(
        "source",
        "dataset",
        "Where frames come from",
        choices=("dataset", "folder", "video", "camera"),
        read_only=True,
    ),
    Param(
        "dataset",
        "fashion-mnist",
        "Data set for source=dataset (publishes ground truth)",
        choices=("fashion-mnist", "mnist"),
        read_only=True,
    ),
    Param("split", "test", "Data set split", choices=("train", "test"), read_only=True),
    Param(
        "path",
        "",
        "Image folder (source=folder; a labels.csv of file,class_index in it labels "
        "the images) "
        "or video file (source=video)",
        read_only=True,
    ),
    Param("device_index", 0, "OpenCV camera index (source=camera)", min=0, max=64, read_only=True),
    Param("rate_hz", 10.0, "Frames published per second", min=0.01, max=1000.0),
    Param("frames", 0, "Stop after this many frames; 0 = run until stopped", min=0, max=10**9),
    Param("loop", True, "Start again at the end of a data set, folder or video"),
    Param("start_index", 0, "First data set index", min=0, max=10**9, read_only=True),
    Param("frame_id", "camera", "header.frame_id of published images"),
    Param(
        "wait_for_subscribers_s",
        10.0,
        "Wait this long for a subscriber before the first frame",
        min=0.0,
        max=600.0,
        read_only=True,
    ),
    Param(
        "wait_for_topics",
        "",
        "Comma-separated topics (relative names resolve in this node's "
        "namespace) "
        "that must also have a subscriber before the first frame, e.g. 'latent,latent_shaped', "
        "so that "
        "no frame is lost while the rest of the pipeline is still being discovered; the wait "
        "still "
        "ends after wait_for_subscribers_s",
        read_only=True,
    ),
    Param(
        "qos_depth",
        2,
        "History depth of the image publisher (best effort, keep last)",
        min=1,
        max=100,
        read_only=True,
    ),
    Param(
        "output",
        "raw",
        "Publish frames as sensor_msgs/Image on image_raw (raw), as "
        "sensor_msgs/CompressedImage "
        "on image_raw/compressed as ROS's compressed image transport does (compressed), or both",
        choices=("raw", "compressed", "both"),
        read_only=True,
    ),
    Param(
        "compressed_format",
        "jpeg",
        "Format of image_raw/compressed",
        choices=("jpeg", "png"),
        read_only=True,
    ),
    Param(
        "jpeg_quality", 95, "JPEG quality of image_raw/compressed", min=1, max=100, read_only=True
    ),
    Param(
        "png_level",
        3,
        "PNG compression level of image_raw/compressed",
        min=0,
        max=9,
        read_only=True,
    ),
)

EDGE: tuple[Param, ...] = _codec_params(2.0, runtime_quality=True) + (
    Param(
        "qos_depth",
        1,
        "Image subscription depth: older frames are dropped while busy",
        min=1,
        max=100,
        read_only=True,
    ),
    Param(
        "max_image_pixels",
        8192 * 8192,
        "Largest accepted camera image (pixels); compressed "
        "frames are "
        "also capped at 4K UHD (3840 x 2160), as the server caps whole-frame image payloads",
        min=1,
        max=8192 * 8192,
        read_only=True,
    ),
    Param(
        "input",
        "raw",
        "Camera frames to subscribe: sensor_msgs/Image on image_raw (raw), or "
        "sensor_msgs/CompressedImage (JPEG/PNG, as ROS's compressed image transport publishes "
        "them) on "
        "image_raw/compressed (compressed)",
        choices=("raw", "compressed"),
        read_only=True,
    ),
    Param(
        "rate_control",
        "fixed",
        "fixed: every frame at 'quality'; budget: per frame, the most "
        "accurate rate "
        "level expected to meet latency_budget_ms and max_kbit_s on the link as estimated from "
        "the results "
        "(payload bytes and transfer times), with hysteresis (learned codecs with shipped "
        "levels)",
        choices=("fixed", "budget"),
    ),
    Param(
        "latency_budget_ms",
        100.0,
        "Budget mode: capture -> result time each frame should meet, ms; 0 = none",
        min=0.0,
        max=60000.0,
    ),
    Param(
        "max_kbit_s",
        0.0,
        "Budget mode: most kbit/s the latents may take on the link; 0 = no cap",
        min=0.0,
        max=1e7,
    ),
    Param(
        "queue_policy",
        "newest",
        "Frames that arrive while the edge is busy: newest = the "
        "subscription callback "
        "keeps only the newest frame and a worker thread encodes it when free, each older frame "
        "counted as "
        "'skipped' (results stay fresh under overload); fifo = every frame the image "
        "subscription (qos_depth) "
        "holds is encoded in arrival order",
        choices=QUEUE_POLICIES,
        read_only=True,
    ),
    Param(
        "max_in_flight",
        1,
        "queue_policy newest: most latents the edge has out (sent, result "
        "not back yet) "
        "before it encodes another frame; while that many are out the newest camera frame waits "
        "at the edge "
        "(older ones are skipped and counted) and is encoded when a result comes back, so it "
        "meets an idle "
        "server instead of waiting there (and the edge's CPU is not spent on frames the server "
        "would skip); a "
        "result also answers every earlier latent. 0 = no limit (encode whenever free). Ignored "
        "with fifo",
        min=0,
        max=1000,
        read_only=True,
    ),
    Param(
        "max_frame_wait",
        0.5,
        "queue_policy newest with max_in_flight: a frame that has waited "
        "at the edge for "
        "more than this share of the camera's frame period (measured) when a place comes free "
        "is skipped (counted) "
        "and the next frame, due within the rest of the period, is encoded on arrival instead: "
        "results are at most "
        "this share of a period older than their compute, for fewer results per second under "
        "overload; 0 = off "
        "(the waiting frame is encoded whatever its wait)",
        min=0.0,
        max=1.0,
        read_only=True,
    ),
    Param(
        "in_flight_timeout_ms",
        0.0,
        "A latent whose result has not come back after this many "
        "ms no longer "
        "counts against max_in_flight (counted as in_flight_expired in /diagnostics: a lost "
        "result cannot stall "
        "the edge); 0 = adaptive: 3 x the 95th percentile of the last 50 round trips, at least "
        "100 ms "
        "(1000 ms until 5 results are back)",
        min=0.0,
        max=600000.0,
        read_only=True,
    ),
    Param(
        "frame_silence_s",
        3.0,
        "Warn (once, with the fix) when a publisher is matched on the "
        "image topic but "
        "no frame arrived for this many seconds (large frames from a process without the Fast "
        "DDS profile are "
        "lost that way); frames the middleware reports lost are counted as 'image_lost' and "
        "warned about too",
        min=0.1,
        max=3600.0,
        read_only=True,
    ),
    Param(
        "worst_link_kbit_s",
        0.0,
        "Budget mode: a level must also meet latency_budget_ms if the "
        "link drops to "
        "this many kbit/s just after the frame is sent (the slowest the link gets: a hard "
        "deadline through "
        "sudden fades, at smaller levels while the link is fast); 0 = the link as estimated",
        min=0.0,
        max=1e7,
    ),
)

SERVER: tuple[Param, ...] = _codec_params(1.0) + (
    Param(
        "robots",
        "",
        "Robots served by this one server, as comma-separated namespaces "
        "(robot1,robot2): it "
        "subscribes <robot>/latent of each and answers on <robot>/classification with per-robot "
        "LinkStats on "
        "<robot>/link_stats; '' = the node's own latent / classification topics (one robot)",
        read_only=True,
    ),
    Param(
        "all_levels",
        True,
        "Decode every rate level: a learned codec loads all its shipped "
        "levels and decodes "
        "each latent with the level its model id and rate level name (an edge may switch levels "
        "at run time); "
        "an image codec accepts every quality. false = only the configured quality",
        read_only=True,
    ),
    Param("top_k", 5, "Number of classes in topk_ids/topk_scores", min=1, max=1000),
    Param(
        "max_payload_bytes",
        1 << 20,
        "Payloads larger than this are dropped unread",
        min=1,
        max=1 << 28,
    ),
    Param(
        "max_decoded_elements",
        1 << 22,
        "Largest tensor a payload may declare (elements)",
        min=1,
        max=1 << 28,
    ),
    Param(
        "qos_depth",
        10,
        "Latent subscription depth per robot (reliable, keep last); 1 = only "
        "the newest "
        "latent of each robot waits (a saturated fleet server answers fresh frames)",
        min=1,
        max=1000,
        read_only=True,
    ),
    Param(
        "queue_policy",
        "newest",
        "Latents that arrive while the server is busy: newest = the "
        "subscription "
        "callback checks each latent and keeps only the newest of each robot, a worker thread "
        "classifies it "
        "when free, each older one counted as 'skipped' (results stay fresh under overload); "
        "fifo = every "
        "latent in arrival order (qos_depth per robot)",
        choices=QUEUE_POLICIES,
        read_only=True,
    ),
    Param(
        "max_batch",
        1,
        "Micro-batching: latents that arrive within max_wait_ms (from any "
        "robot) are decoded "
        "one by one and classified in one network call of up to max_batch frames; 1 = off (each "
        "frame at "
        "once). Pays where the network is large (camera-scale teachers, a GPU)",
        min=1,
        max=256,
        read_only=True,
    ),
    Param(
        "max_wait_ms",
        5.0,
        "Micro-batching: longest time a latent waits for others before its "
        "batch runs "
        "(counted in server_total_ms and server_wait_ms); used when max_batch > 1",
        min=0.0,
        max=1000.0,
        read_only=True,
    ),
)

LINK_EMULATOR: tuple[Param, ...] = (
    Param(
        "profile",
        "4g",
        "Network preset: 4g 12.0, wifi 54.0, 5g 66.9 Mbit/s (seed paper Table "
        "2), "
        "none = no shaping",
        choices=tuple(PRESETS),
    ),
    Param("rate_mbps", -1.0, "Link rate in Mbit/s; -1 = the preset's", min=-1.0, max=1e6),
    Param(
        "delay_ms",
        -1.0,
        "One-way propagation delay in ms; -1 = the preset's",
        min=-1.0,
        max=60000.0,
    ),
    Param("jitter_ms", 0.0, "Uniform jitter +/- ms on the delay", min=0.0, max=60000.0),
    Param("loss", 0.0, "Probability of losing a frame", min=0.0, max=1.0),
    Param(
        "max_queue_ms",
        500.0,
        "Frames that would wait longer than this are dropped",
        min=0.0,
        max=60000.0,
    ),
    Param(
        "size_basis",
        "message",
        "Bytes that occupy the link: the serialized message or the payload",
        choices=("message", "payload"),
    ),
    Param(
        "seed", 0, "Random seed of the loss and jitter draws", min=0, max=2**31 - 1, read_only=True
    ),
    Param(
        "max_pending",
        1000,
        "Most frames held in the emulated link at once",
        min=1,
        max=100000,
        read_only=True,
    ),
    Param("stats_period_s", 1.0, "Seconds between /diagnostics messages", min=0.1, max=3600.0),
    Param(
        "rate_schedule",
        "",
        "A link rate that changes over time, 'Mbit/s:seconds,...' repeated "
        "from the start "
        "(e.g. '54:10,2:10,12:10': Wi-Fi that drops to 2 Mbit/s for 10 s and recovers); "
        "overrides rate_mbps; "
        "'' = constant rate. Setting it restarts the schedule",
    ),
    Param(
        "blackout_s",
        0.0,
        "Setting this > 0 drops every frame for that many seconds from now "
        "(a link "
        "outage); 0 = none",
        min=0.0,
        max=3600.0,
    ),
)

NODE_PARAMS: dict[str, tuple[Param, ...]] = {
    "camera_source": CAMERA_SOURCE,
    "edge": EDGE,
    "server": SERVER,
    "link_emulator": LINK_EMULATOR,
}


def defaults(params: tuple[Param, ...]) -> dict[str, Any]:
    return {p.name: p.default for p in params}
