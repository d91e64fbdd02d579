"""ros2 launch hecsb_ros split_inference.launch.py [codec:=hecsb] [profile:=4g] [source:=dataset] ...

Starts camera source, edge, link emulator and server. The node set comes from
hecsb_ros.graph.split_inference_nodes, the same description that 'hecsb-demo' uses. The nodes get
the shipped Fast DDS profile (share/hecsb_ros/config/fastdds_profile.xml: a 32 MiB shared-memory
segment, without which camera frames of 640x480 and more are lost between processes) unless
FASTDDS_DEFAULT_PROFILES_FILE is already set (set it empty to run on Fast DDS's defaults).
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable, UnsetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from hecsb_ros.graph import FASTDDS_PROFILE_VAR, LAUNCH_ARGUMENTS, fastdds_profile, split_inference_nodes


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    params_file = values["params_file"]
    actions = []
    if FASTDDS_PROFILE_VAR not in os.environ:
        actions.append(SetEnvironmentVariable(FASTDDS_PROFILE_VAR, str(fastdds_profile())))
    elif not os.environ[FASTDDS_PROFILE_VAR]:  # set empty: Fast DDS's defaults, without its error about ''
        actions.append(UnsetEnvironmentVariable(FASTDDS_PROFILE_VAR))
    for spec in split_inference_nodes(**values):
        parameters = ([params_file] if params_file else []) + [spec.parameters]
        env = {k: v for k, v in spec.env.items() if k not in os.environ}  # the edge's malloc settings
        actions.append(Node(package="hecsb_ros", executable=spec.executable, name=spec.name,
                            parameters=parameters, remappings=list(spec.remappings), output="screen",
                            **({"additional_env": env} if env else {})))
    return actions


def generate_launch_description():
    args = [DeclareLaunchArgument(name, default_value=default, description=description)
            for name, (default, description) in LAUNCH_ARGUMENTS.items()]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
