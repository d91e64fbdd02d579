"""Imports every built-in codec module so their ``@register_codec`` decorators run."""
from hecsb_ros.core.codecs import crbq  # noqa: F401  CR+BQ baseline
from hecsb_ros.core.codecs import hecsb  # noqa: F401  HECS-B
from hecsb_ros.core.codecs import image  # noqa: F401  raw, png, jpeg, webp
from hecsb_ros.core.codecs import neural  # noqa: F401  factorized, hyperprior (input compression)
from hecsb_ros.core.codecs import svb  # noqa: F401  SVB baseline
