#!/usr/bin/env bash
# Build the hecsb_ros messages into a virtual environment that holds the ROS 2 wheels from PyPI.
# Usage: scripts/build_msgs.sh [VENV]   (default: .venv). Idempotent: skips when up to date.
# On a regular ROS 2 installation use 'colcon build' instead (see docs/ros.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(cd "${1:-$here/.venv}" && pwd)"
py="$venv/bin/python"
# One build directory per venv: a CMake cache keeps the prefix it found its packages in (ament_cmake_DIR,
# std_msgs_DIR, ...), so a directory configured against another venv (Kilted vs Jazzy wheels) would
# silently build against that venv's generators.
build="$here/build/msgs"
[ "$venv" = "$(cd "$here/.venv" 2>/dev/null && pwd)" ] || build="$here/build/msgs-$(printf %s "$venv" | sha256sum | cut -c1-12)"

# Fix 2 of the machine notes: the wheels' exported CMake files name the include directories of
# the machine that built them. Point them at this venv's Python and numpy.
py_inc="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$py" -c 'import numpy; print(numpy.get_include())')"
{ grep -rlE "/opt/python/[^/]+/(include|lib)" "$venv"/share/*/cmake/ 2>/dev/null || true; } | while read -r f; do
  sed -i -E \
    -e "s#/opt/python/[^/;\" ]+/lib/python3\.[0-9]+/site-packages/numpy/(_core|core)/include#${np_inc}#g" \
    -e "s#/opt/python/[^/;\" ]+/include/python3\.[0-9]+#${py_inc}#g" "$f"
done || true

mkdir -p "$build"
stamp="$build/.built"
newest_src="$(find "$here/msg" "$here/CMakeLists.txt" "$here/package.xml" -newer "$stamp" 2>/dev/null | head -n1 || true)"
if [ -f "$stamp" ] && [ -z "$newest_src" ] && "$py" -c 'import hecsb_ros.msg' 2>/dev/null; then
  echo "messages: up to date"
  exit 0
fi

# Fix 3: ament index lookups need the prefix.
export AMENT_PREFIX_PATH="$venv"
export PATH="$venv/bin:$PATH"
cmake -S "$here" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" -DHECSB_INSTALL_PYTHON_SOURCES=OFF \
  -DPython3_EXECUTABLE="$py" -DPYTHON_EXECUTABLE="$py" -DBUILD_TESTING=OFF \
  -DCMAKE_BUILD_TYPE=Release > "$build.log" 2>&1 || { tail -n 40 "$build.log"; exit 1; }
cmake --build "$build" -j 2 >> "$build.log" 2>&1 || { tail -n 40 "$build.log"; exit 1; }
cmake --install "$build" >> "$build.log" 2>&1 || { tail -n 40 "$build.log"; exit 1; }
touch "$stamp"
"$py" -c 'from hecsb_ros.msg import CompressedLatent, ClassificationResult, LinkStats, GroundTruth' \
  && echo "messages: built and installed into $venv"
