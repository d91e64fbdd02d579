"""Baselines of the seed paper's section 4.2: SVB, CR+BQ and neural input compression.

Each has a model, its training procedure and a deployable split (edge encode / server decode);
the codecs in :mod:`hecsb_ros.core.codecs` wrap them for the registry. Checkpoints live beside the
HECS-B ones as ``{kind}_fmnist_r{LEVEL}.safetensors`` with a ``.json`` manifest.
"""
from hecsb_ros.core.baselines.checkpoint import KINDS, level_path, list_levels, read_manifest

__all__ = ["KINDS", "level_path", "list_levels", "read_manifest"]
