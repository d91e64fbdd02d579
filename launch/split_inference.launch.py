"""ros2 launch hecsb_ros split_inference.launch.py [codec:=hecsb] [profile:=4g] [source:=dataset]
...

Starts camera source, edge, link emulator and server; with robots:=robot1,robot2 a fleet: camera
source, edge and link emulator per robot under /<robot>/, one server for all. The node set comes
from hecsb_ros.graph.split_inference_nodes, the same description that the process runner ('hecsb
demo') uses. With lifecycle:=true (default) edge and server are managed (lifecycle) nodes: their
processes start at once, then the server is configured (codec loaded) and activated, then the edge,
and the camera source starts only once the edge is active, so no frame is published into a pipeline
that is not there yet. A failed configure (e.g. an unknown checkpoint) logs the node's reason and
ends the launch. lifecycle:=false starts plain nodes at once (the camera waits for the pipeline's
subscribers). The nodes get the shipped Fast DDS profile
(share/hecsb_ros/config/fastdds_profile.xml) through both profile variables unless one is already
set (empty: Fast DDS's defaults); why and how: docs/ros.md, "Large frames between processes: the
Fast DDS profile".
"""

import os

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
    UnsetEnvironmentVariable,
)
from launch.events import Shutdown, matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from hecsb_ros.graph import (
    LAUNCH_ARGUMENTS,
    PROFILE_VARS,
    START_ORDER,
    fastdds_profile,
    profile_setting,
    split_inference_nodes,
)


def _node_action(spec, params_file):
    parameters = ([params_file] if params_file else []) + [spec.parameters]
    env = {k: v for k, v in spec.env.items() if k not in os.environ}  # the edge's malloc settings
    kwargs = dict(
        package="hecsb_ros",
        executable=spec.executable,
        name=spec.name,
        parameters=parameters,
        remappings=list(spec.remappings),
        output="screen",
        **({"additional_env": env} if env else {}),
    )
    return (
        LifecycleNode(namespace=spec.namespace, **kwargs)
        if spec.managed
        else Node(namespace=spec.namespace, **kwargs)
    )


def _transition(action, transition_id):
    return EmitEvent(
        event=ChangeState(
            lifecycle_node_matcher=matches_action(action), transition_id=transition_id
        )
    )


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    actions = []
    # Fast DDS 3 (Kilted) reads FASTDDS_DEFAULT_PROFILES_FILE, Fast DDS 2.x (Humble, Jazzy)
    # FASTRTPS_DEFAULT_PROFILES_FILE: both get the user's choice, else the shipped profile.
    chosen = profile_setting(os.environ)
    profile = str(fastdds_profile()) if chosen is None else chosen
    for var in PROFILE_VARS:
        if not profile:  # set empty: Fast DDS's defaults, without its error about ''
            actions.append(UnsetEnvironmentVariable(var))
        elif var not in os.environ:
            actions.append(SetEnvironmentVariable(var, profile))
    # In START_ORDER of their roles (a fleet's robots keep their order within a role).
    specs = sorted(split_inference_nodes(**values), key=lambda s: START_ORDER.index(s.role))
    nodes = {spec.key: _node_action(spec, values["params_file"]) for spec in specs}
    names = {spec.key: spec.path for spec in specs}
    managed = [spec.key for spec in specs if spec.managed]
    cameras = [nodes[spec.key] for spec in specs if spec.role == "camera_source"]
    if not managed:  # plain nodes, all at once
        return actions + [nodes[spec.key] for spec in specs]
    # Every process but the cameras' starts now (their imports overlap); then the server, then each
    # edge are configured and activated in turn; the camera sources start once the last one is
    # active.
    actions += [nodes[spec.key] for spec in specs if spec.role != "camera_source"]
    for i, key in enumerate(managed):
        node = nodes[key]
        then = (
            [_transition(nodes[managed[i + 1]], Transition.TRANSITION_CONFIGURE)]
            if i + 1 < len(managed)
            else cameras
        )
        actions += [
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=node,
                    start_state="configuring",
                    goal_state="inactive",
                    handle_once=True,
                    entities=[_transition(node, Transition.TRANSITION_ACTIVATE)],
                )
            ),
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=node,
                    start_state="activating",
                    goal_state="active",
                    handle_once=True,
                    entities=[LogInfo(msg=f"hecsb_ros: {names[key]} is active"), *then],
                )
            ),
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=node,
                    start_state="configuring",
                    goal_state="unconfigured",
                    handle_once=True,
                    entities=[
                        LogInfo(
                            msg=f"hecsb_ros: {names[key]} failed to configure (the reason "
                            "is in its log "
                            "above); stopping the launch"
                        ),
                        EmitEvent(event=Shutdown(reason=f"{names[key]} failed to configure")),
                    ],
                )
            ),
        ]
    actions.append(_transition(nodes[managed[0]], Transition.TRANSITION_CONFIGURE))
    return actions


def generate_launch_description():
    args = [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, (default, description) in LAUNCH_ARGUMENTS.items()
    ]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
