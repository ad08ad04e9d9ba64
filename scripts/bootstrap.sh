#!/usr/bin/env bash
# Creates .venv and installs everything the project needs, from nothing.
# torch==2.13.0 goes in first: on CPU machines it is a local CPU wheel, and installing it before
# anything that depends on torch stops pip from resolving an unpinned torch to a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=${VENV:-.venv}
STAMP="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]"
touch "$STAMP"
echo "environment ready: $VENV"
