"""Learned bottlenecks for split computing; HECS-B (seed paper, section 3.3)."""
from hecsb_ros.core.bottleneck.coding import LatentCoder
from hecsb_ros.core.bottleneck.hecsb import HecsbBottleneck, HecsbConfig, distortion, rate_bits
from hecsb_ros.core.bottleneck.split import (
    DEFAULT_RATE_LEVEL, HECSB_FORMAT, HecsbSplit, list_rate_levels, load_bottleneck, rate_level_path,
    save_bottleneck,
)

__all__ = ["DEFAULT_RATE_LEVEL", "HECSB_FORMAT", "HecsbBottleneck", "HecsbConfig", "HecsbSplit", "LatentCoder",
           "distortion", "list_rate_levels", "load_bottleneck", "rate_bits", "rate_level_path", "save_bottleneck"]
