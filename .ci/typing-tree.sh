#!/usr/bin/env bash
# The tree that static tools (mypy, pyright/Pylance) read the package from: build/typing/shop_r1/
# holds one directory symlink per top-level folder (envs, personas, simulator, training), so
# `shop_r1.envs.x` resolves to envs/x.py. The editable install maps those names with an import
# hook, which static tools cannot follow; a strict editable install (a link tree of single files)
# would, but misses every module added after it was made. Directory links see new files at
# once. pyproject.toml's [tool.mypy] mypy_path and [tool.pyright] extraPaths point here.
# Idempotent; called by .ci/setup.sh and by tests/test_typecheck.py.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/typing/shop_r1
mkdir -p "$tree"
for top in envs personas simulator training; do
  ln -sfn "../../../$top" "$tree/$top"
done
