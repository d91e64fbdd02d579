"""hecsb_edge with a fixed extra cost per frame, for load tests: ``python -m hecsb_ros.reliability.slow_edge``.

The codec, payloads and model id are the edge's own; each encode first sleeps
``HECSB_EDGE_EXTRA_MS`` milliseconds (default 25), standing in for a heavier encoder (a learned
codec on an embedded board). The edge's sustainable rate is then at most 1000 / extra_ms frames/s.
"""
from __future__ import annotations

import os
import time

from hecsb_ros.nodes.common import run_node
from hecsb_ros.nodes.edge import EdgeNode


class SlowEdgeNode(EdgeNode):
    """EdgeNode whose codec takes ``extra_ms`` longer per frame."""

    def __init__(self, extra_ms: float | None = None, **node_kwargs) -> None:
        super().__init__(**node_kwargs)
        self.extra_ms = float(os.environ.get("HECSB_EDGE_EXTRA_MS", "25")) if extra_ms is None else extra_ms
        encode = self.codec.encode

        def slow_encode(image, encoding):
            time.sleep(self.extra_ms / 1e3)
            return encode(image, encoding)

        self.codec.encode = slow_encode
        self.get_logger().info(f"load-test edge: +{self.extra_ms:.1f} ms per frame")


def main(args: list[str] | None = None) -> int:
    return run_node(SlowEdgeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
