"""Node parameters: declared from their descriptions in ``hecsb_ros.params`` (descriptors with
ranges and choices), checked at start-up and on every change at run time, read into a config."""

from __future__ import annotations

import dataclasses
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from hecsb_ros.params import Param, check_value


def _descriptor(p: Param) -> ParameterDescriptor:
    d = ParameterDescriptor(description=p.description, read_only=p.read_only)
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    if isinstance(p.default, bool):
        return d
    if isinstance(p.default, int) and p.min is not None and p.max is not None:
        d.integer_range = [IntegerRange(from_value=int(p.min), to_value=int(p.max), step=1)]
    elif isinstance(p.default, float) and p.min is not None and p.max is not None:
        d.floating_point_range = [
            FloatingPointRange(from_value=float(p.min), to_value=float(p.max), step=0.0)
        ]
    return d


def declare_parameters(
    node: Node, params: tuple[Param, ...], validate: bool = True
) -> dict[str, Any]:
    """Declare ``params`` with descriptors, validate the start-up values, return them by name.

    Raises ValueError (fail fast) with every invalid value and the fix (with ``validate=False`` the
    caller checks later, see :func:`parameter_problems`); installs a callback that rejects invalid
    runtime changes with a reason.
    """
    by_name = {p.name: p for p in params}
    values: dict[str, Any] = {}
    for p in params:
        value = node.declare_parameter(p.name, p.default, _descriptor(p)).value
        if isinstance(p.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        values[p.name] = value
    problems = parameter_problems(node, params)
    if validate and problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))

    def on_set(changes: list[Parameter]) -> SetParametersResult:
        for change in changes:
            p = by_name.get(change.name)
            if p is None:
                continue
            reason = check_value(p, change.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


def parameter_problems(node: Node, params: tuple[Param, ...]) -> list[str]:
    """Why the node's current values of ``params`` are not acceptable (empty: all are)."""
    problems = []
    for p in params:
        reason = check_value(p, node.get_parameter(p.name).value)
        if reason:
            problems.append(reason)
    return problems


def read_config(node: Node, params: tuple[Param, ...], cls: type) -> Any:
    """Current values of ``params`` as an instance of the frozen dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{p.name: node.get_parameter(p.name).value for p in params if p.name in names})
