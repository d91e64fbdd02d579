"""Learned codec models: the HECS-B bottleneck (seed paper, section 3.3), the split-computing
baselines SVB and CR+BQ, and the neural input codecs, on one base (:class:`LearnedModel`, built on
CompressAI's ``CompressionModel``), with one checkpoint format and one deployable :class:`Split`.
"""

from hecsb_ros.core.learned.base import (
    BASELINE_FORMAT,
    BUILTIN_MODELS,
    HECSB_FORMAT,
    Coder,
    FactorizedLatentModel,
    LearnedModel,
    build_learned,
    config_from_dict,
    distortion,
    list_models,
    model_class,
    rate_bits,
    read_learned,
    register_model,
    save_learned,
)
from hecsb_ros.core.learned.crbq import CrbqBottleneck, CrbqConfig, crbq_config_for
from hecsb_ros.core.learned.hecsb import DECODER_FIELDS, HecsbBottleneck, HecsbConfig
from hecsb_ros.core.learned.neural import (
    NeuralConfig,
    SmallFactorizedPrior,
    SmallMeanScaleHyperprior,
)
from hecsb_ros.core.learned.split import Split
from hecsb_ros.core.learned.svb import SvbBottleneck, SvbConfig, svb_config_for

__all__ = [
    "BASELINE_FORMAT",
    "BUILTIN_MODELS",
    "Coder",
    "CrbqBottleneck",
    "CrbqConfig",
    "DECODER_FIELDS",
    "FactorizedLatentModel",
    "HECSB_FORMAT",
    "HecsbBottleneck",
    "HecsbConfig",
    "LearnedModel",
    "NeuralConfig",
    "SmallFactorizedPrior",
    "SmallMeanScaleHyperprior",
    "Split",
    "SvbBottleneck",
    "SvbConfig",
    "build_learned",
    "config_from_dict",
    "crbq_config_for",
    "distortion",
    "list_models",
    "model_class",
    "rate_bits",
    "read_learned",
    "register_model",
    "save_learned",
    "svb_config_for",
]
