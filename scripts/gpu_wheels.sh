#!/usr/bin/env bash
# Prepare what the GPU check carries to the device machine (no network there), in two
# git-ignored folders:
#   .whl/          our distributions as wheels (semtoken-rag, semtoken-rag-lab), and in
#   .whl/faiss/    faiss-cpu (the store's codecs: the benchmark's store section runs on the
#                  device's CPU; installed apart there, used when it imports)
#   .gpu_assets/   encoder and reader configs + tokenizers (random weights are built there)
#                  and the NarrativeQA subset the benchmark workloads are cut from
# Torch, transformers, sentence-transformers, numpy... are on the device already: never carried.
#
# Usage: bash scripts/gpu_wheels.sh [--no-faiss]
#   --no-faiss   skip the 18 MiB faiss-cpu download (CI's rehearsal; the check then uses the
#                machine's own faiss if any, else skips the benchmark's store section)
# Then, on the device: bash scripts/gpu_check.sh   (carry: .whl .gpu_assets)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
FAISS=1
for arg in "$@"; do
  case "$arg" in
    --no-faiss) FAISS=0 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
LIMIT_MIB=64

rm -rf .whl .gpu_assets
mkdir -p .whl/faiss
# Our wheels, built with this venv's setuptools (no isolation: no download, a few seconds), from
# a copy of the working tree's files: an in-tree build also packages the stale modules that
# build/lib keeps from earlier builds (setuptools never prunes it).
SRC=$(mktemp -d "${TMPDIR:-/tmp}/semtoken-src.XXXXXX")
trap 'rm -rf "$SRC"' EXIT
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$SRC"
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl "$SRC" "$SRC/lab"
if [ "$FAISS" = 1 ]; then
  # The faiss-cpu this venv tests with, as a wheel for the device's Python 3.12 on manylinux
  # (1.15.1 is one cp310-abi3 manylinux_2_28 wheel, 18 MiB: it also installs here).  FAISS
  # runs on the CPU only: the library has no GPU FAISS code.
  FAISS_VERSION=$("$PY" -c "from importlib.metadata import version; print(version('faiss-cpu'))")
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl/faiss "faiss-cpu==$FAISS_VERSION"
fi
"$PY" -m semtoken_lab.bench.synthetic export --out .gpu_assets >/dev/null

# What travels: tracked + untracked-not-ignored files, plus the two carried folders.
tree_bytes=$( { git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -r stat -c %s 2>/dev/null || true; } | awk '{s+=$1} END {print s+0}')
carry_bytes=$(du -sb .whl .gpu_assets | awk '{s+=$1} END {print s+0}')
total=$((tree_bytes + carry_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "wheels:      $(ls .whl/*.whl .whl/faiss/*.whl 2>/dev/null | xargs -n1 basename | tr '\n' ' ')"
echo "working tree $(mib "$tree_bytes") MiB + .whl/.gpu_assets $(mib "$carry_bytes") MiB" \
  "= $(mib "$total") MiB of the ${LIMIT_MIB} MiB per call"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "over the carry limit: run with --no-faiss or trim the working tree" >&2
  exit 1
fi
