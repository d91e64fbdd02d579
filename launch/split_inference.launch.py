"""ros2 launch hecsb_ros split_inference.launch.py [codec:=hecsb] [profile:=4g] [source:=dataset] ...

Starts camera source, edge, link emulator and server. The node set comes from
hecsb_ros.graph.split_inference_nodes, the same description that 'hecsb-demo' uses.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from hecsb_ros.graph import LAUNCH_ARGUMENTS, split_inference_nodes


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    params_file = values["params_file"]
    actions = []
    for spec in split_inference_nodes(**values):
        parameters = ([params_file] if params_file else []) + [spec.parameters]
        actions.append(Node(package="hecsb_ros", executable=spec.executable, name=spec.name,
                            parameters=parameters, remappings=list(spec.remappings), output="screen"))
    return actions


def generate_launch_description():
    args = [DeclareLaunchArgument(name, default_value=default, description=description)
            for name, (default, description) in LAUNCH_ARGUMENTS.items()]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
