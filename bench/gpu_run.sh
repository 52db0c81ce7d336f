#!/usr/bin/env bash
# paper_table's RL arms + evaluation on one GPU, from the bundle of bench/gpu_bundle.py, on a bare
# machine with no network (issue 23). Run from the repository root on the device machine, with
# the bundle carried (`carry: ["build/gpu-bundle"]`):
#
#     bash bench/gpu_run.sh                      # the GPU sizes (bench/gpu_run.py GPU_DEFAULTS)
#     bash bench/gpu_run.sh --grpo-steps 4       # any gpu_run.py / paper_table flag is passed on
#
# It installs the carried wheels into /tmp/site (the device README's way: no index, no deps),
# puts them first on PYTHONPATH, and runs bench/gpu_run.py on CUDA with a work folder in /tmp.
# Only results.json and log.txt go to $OUT (the device returns at most 8 files).
set -euo pipefail
BUNDLE=${BUNDLE:-build/gpu-bundle}
OUT=${OUT:-out/gpu-run}
SITE=${SITE:-/tmp/site}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
if [ ! -f "$BUNDLE/manifest.json" ]; then
  echo "bench/gpu_run.sh: no bundle at $BUNDLE (make it with bench/gpu_bundle.py and carry it)" >&2
  exit 2
fi
t0=$(date +%s)
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
  "$BUNDLE"/wheels/*.whl
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
echo "wheels installed in $(( $(date +%s) - t0 )) s" >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
set -o pipefail
"$PYTHON" bench/gpu_run.py --bundle "$BUNDLE" --out /tmp/gpu-run --results "$OUT/results.json" \
  --device cuda "$@" 2>&1 | tee "$OUT/log.txt"
echo "total $(( $(date +%s) - t0 )) s" | tee -a "$OUT/log.txt"
