"""hecsb_ros: split-computing perception with the HECS-B bottleneck on ROS 2.

``hecsb_ros.core`` is ROS-free (models, codecs, training, evaluation); ``hecsb_ros.nodes`` holds
the rclpy nodes. The generated message classes (``hecsb_ros.msg``) live in the installed copy of
this package; ``extend_path`` lets a source checkout import them too.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # type: ignore[name-defined]
__version__ = "0.1.0"
