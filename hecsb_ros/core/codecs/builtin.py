"""Imports every built-in codec module so their ``@register_codec`` decorators run."""
from hecsb_ros.core.codecs import image  # noqa: F401  raw, png, jpeg, webp

try:  # learned codecs need compressai; image codecs work without it
    from hecsb_ros.core.codecs import hecsb  # noqa: F401
    from hecsb_ros.core.codecs import svb  # noqa: F401  SVB baseline
    from hecsb_ros.core.codecs import crbq  # noqa: F401  CR+BQ baseline
    from hecsb_ros.core.codecs import neural  # noqa: F401  factorized, hyperprior
except ImportError as exc:  # pragma: no cover - depends on the environment
    if "compressai" not in str(exc) and "hecsb" not in str(exc):
        raise
