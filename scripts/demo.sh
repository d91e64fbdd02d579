#!/usr/bin/env bash
# Install everything (idempotent), then run the split-inference demo: Fashion-MNIST test images ->
# edge -> 4g link -> server, 200 frames, with the default codec. Extra arguments go to hecsb-demo
# (python -m hecsb_ros.cli.run_demo --help), e.g. scripts/demo.sh --codec webp --profile wifi
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
exec .venv/bin/python -m hecsb_ros.cli.run_demo --profile 4g --frames 200 "$@"
