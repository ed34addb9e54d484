#!/usr/bin/env bash
# One command from a fresh clone to the full test suite (real models, real FAISS, real frameworks).
set -euo pipefail
cd "$(dirname "$0")/.."
# Python writes each module's bytecode at its first import (as it does by default), instead of
# setup compiling every installed file up front (scripts/setup.sh): cheaper by about a minute.
unset PYTHONDONTWRITEBYTECODE
bash scripts/setup.sh
# Two pytest-xdist workers of one torch thread each: the Ray tests (about 40% of the time, much
# of it spent waiting for actors) run as one group in one worker, sharing its local Ray
# (tests/conftest.py), while the other runs the rest.  One thread each, because two 2-thread
# OpenMP pools on 2 cores spin against each other (the suite took longer than serially).
OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup "$@"
