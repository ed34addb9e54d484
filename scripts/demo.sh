#!/usr/bin/env bash
# One command from a fresh clone to the demo: set up, then compress the bundled sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/semtoken-rag demo "$@"
