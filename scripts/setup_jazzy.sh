#!/usr/bin/env bash
# A second virtual environment with the ROS 2 Jazzy (LTS) wheels from PyPI, to run the node, conversion
# and DDS tests against Jazzy's rclpy 7.1 (scripts/test.sh --distro jazzy). torch, torchvision and
# compressai are not installed again (5.5 GB): a path line in a .pth file appends the main venv's
# site-packages AFTER this venv's own, so Jazzy's rclpy and messages win and the machine-learning
# packages come from the main venv. A path line does not run that directory's .pth files (the Kilted
# wheels' bootstrapper stays out). Idempotent; needs scripts/setup.sh first.
# Usage: scripts/setup_jazzy.sh   (VENV_JAZZY=path, default build/venv-jazzy; ML_VENV=path, default .venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV_JAZZY:-$here/build/venv-jazzy}"
ml_venv="$(cd "${ML_VENV:-$here/.venv}" && pwd)"
say() { printf '\033[1m[setup-jazzy]\033[0m %s\n' "$*" >&2; }
# A python started from a process that already ran the Kilted bootstrap would keep its LD_LIBRARY_PATH.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE LD_LIBRARY_PATH

py="$(command -v python3.11 || command -v python3)"
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || { say "creating $venv"; "$py" -m venv "$venv"; }
venv="$(cd "$venv" && pwd)"
stamp="$venv/.hecsb-requirements"
want="$(cat "$here/requirements-jazzy.txt" "$here/constraints.txt" | sha256sum | cut -d' ' -f1)"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # pip must not see the main venv's packages (it would count them as installed here).
  rm -f "$site/zz_hecsb_shared_ml.pth"
  say "installing the Jazzy wheels (about 110 MB of ROS, under a minute)"
  # The main venv's pins for everything that is not ROS (docutils, lark, ... that the ROS wheels pull
  # in), so that the packages both venvs hold have the same versions (checked below).
  shared="$venv/.hecsb-shared-constraints.txt"
  grep -viE '^(ros-|ros_|rosidl|ament|rcl|rmw|rcutils|rpyutils|[a-z0-9_.-]*[-_](msgs|interfaces)==)' \
    "$here/constraints.txt" | grep -E '==' > "$shared"
  "$venv/bin/python" -m pip install -q -r "$here/requirements-jazzy.txt" -c "$shared" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c "import importlib.metadata as m; assert m.version('ros-rclpy').startswith('7.')" \
    || { say "Jazzy rclpy did not install (see the pip output above)"; exit 1; }
  echo "$want" > "$stamp"
else
  say "Jazzy wheels: up to date"
fi

"$here/scripts/build_msgs.sh" "$venv"

ml_site="$("$ml_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$here" > "$site/hecsb_ros_checkout.pth"
echo "$ml_site" > "$site/zz_hecsb_shared_ml.pth"     # 'zz': after every other .pth of this venv

# Packages in both venvs must have equal versions, except the ROS ones (Jazzy's shadow Kilted's on purpose).
"$venv/bin/python" - "$site" "$ml_site" <<'PY'
import re, sys, importlib.metadata as md
ros = re.compile(r"^(ros-|rosidl|ament|rcl|rmw|rcutils|rpyutils)|(-msgs|-interfaces)$")
def dists(p): return {d.metadata["Name"].lower().replace("_", "-"): d.version for d in md.distributions(path=[p])}
a, b = dists(sys.argv[1]), dists(sys.argv[2])
bad = [f"{n} {a[n]} (jazzy venv) != {b[n]} (main venv)" for n in sorted(set(a) & set(b))
       if a[n] != b[n] and not ros.search(n) and n not in ("pip", "setuptools")]
if bad: sys.exit("version mismatch between the two venvs:\n  " + "\n  ".join(bad))
PY
"$venv/bin/python" -c "
import importlib.metadata as m, rclpy, torch, compressai, cv2
from hecsb_ros.msg import CompressedLatent
assert m.version('ros-rclpy').startswith('7.'), m.version('ros-rclpy')
assert rclpy.__file__.startswith('$venv'), rclpy.__file__
rclpy.init(); rclpy.shutdown()
print('rclpy', m.version('ros-rclpy'), 'from', rclpy.__file__.rsplit('/site-packages', 1)[0], '| torch', torch.__version__,
      'from', torch.__file__.rsplit('/site-packages', 1)[0])
" >&2
say "ready: $venv"
