#!/usr/bin/env bash
# Install everything (idempotent), then run the test suite. Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
exec .venv/bin/python -m pytest "$@"
