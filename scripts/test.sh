#!/usr/bin/env bash
# Set up, check formatting and lint (ruff), then run the test suite (fast tests by default;
# add `-m slow` or `-m ""` for more).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
# formatting and lint first: a red check costs seconds, not the whole suite
.venv/bin/ruff format --check --quiet . || { echo "ruff: files need formatting (run: .venv/bin/ruff format .)" >&2; exit 1; }
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
