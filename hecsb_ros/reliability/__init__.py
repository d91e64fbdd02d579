"""Reliability and security tooling: fuzzing, process control for fault and load runs, soak
reports.

Nothing here is needed to run the nodes; the tests and the ``hecsb_ros.cli`` reliability commands
use it.
"""
