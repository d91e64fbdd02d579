#!/usr/bin/env bash
# Install everything (idempotent), then run the test suite. Extra arguments go to pytest.
# Usage: scripts/test.sh [--distro kilted|jazzy] [pytest args...]
#   kilted (default): the main venv .venv (ROS 2 Kilted wheels + torch).
#   jazzy: also build/venv-jazzy (ROS 2 Jazzy wheels, torch shared from .venv; scripts/setup_jazzy.sh),
#          and pytest runs there, e.g. scripts/test.sh --distro jazzy -m "ros and not once" (node, conversion, DDS tests).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
distro=kilted
if [ "${1:-}" = "--distro" ]; then distro="${2:?--distro needs kilted or jazzy}"; shift 2; fi
"$here/scripts/setup.sh"
cd "$here"
case "$distro" in
  kilted) exec .venv/bin/python -m pytest "$@" ;;
  jazzy)  "$here/scripts/setup_jazzy.sh"
          # the Jazzy python must run its own bootstrap (LD_LIBRARY_PATH of its ROS libraries)
          exec env -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u LD_LIBRARY_PATH "${VENV_JAZZY:-$here/build/venv-jazzy}/bin/python" \
            -m pytest "$@" ;;
  *) echo "unknown distro '$distro' (kilted or jazzy)" >&2; exit 2 ;;
esac
