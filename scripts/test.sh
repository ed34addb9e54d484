#!/usr/bin/env bash
# One command from a fresh clone to the full test suite (real models, real FAISS, real frameworks).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
