#!/usr/bin/env bash
# The README's test command: set up .venv, build what this machine can build, run the CPU test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup_env.sh
if [ -f scripts/build_plugins.sh ]; then
  bash scripts/build_plugins.sh
fi
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then  # pytest: no tests collected
  echo "[tests] no tests were collected"
  exit 0
fi
exit "$rc"
