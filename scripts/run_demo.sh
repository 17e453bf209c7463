#!/usr/bin/env bash
# The README's main job: set up .venv and super-resolve the bundled samples with the demo checkpoint.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RRSR_EXTRAS= bash scripts/setup_env.sh
exec .venv/bin/python -m rrsr_model.demo "$@"
