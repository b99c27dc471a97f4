#!/usr/bin/env bash
# Set up, then run the test suite (fast tests by default; add `-m slow` or `-m ""` for more).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
