"""The entry point of every node process: rclpy up, the node built, spun until Ctrl-C/SIGTERM."""

from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node

from hecsb_ros.nodes.diagnostics import check_fastdds_profile


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C/SIGTERM; a start-up error exits with code
    2."""
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
