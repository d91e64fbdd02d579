#!/usr/bin/env bash
# Install everything (idempotent), then run the split-inference demo: Fashion-MNIST test images ->
# edge -> 4g link -> server, 200 frames, with the default codec. Extra arguments go to hecsb demo
# (python -m hecsb_ros.cli.run_demo --help), e.g. scripts/demo.sh --codec webp --profile wifi
# Camera scale: scripts/demo.sh --teacher efficientnet_lite0 (ImageNet labels for the photos of
# Debian's opencv-doc package, installed here when missing; --source/--path name other photos).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
photos=/usr/share/doc/opencv-doc/examples/data
if [[ " $* " == *" --teacher "* && " $* " != *" --source "* && ! -d $photos ]]; then
  printf '\033[1m[demo]\033[0m apt-get install opencv-doc (sample photos for the camera-scale demo)\n' >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends opencv-doc >/dev/null
fi
cd "$here"
exec .venv/bin/python -m hecsb_ros.cli.run_demo --profile 4g --frames 200 "$@"
