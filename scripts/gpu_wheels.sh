#!/usr/bin/env bash
# Prepare what the GPU check carries to the device machine (no network there), in two
# git-ignored folders:
#   .whl/          our distributions as wheels (semtoken-rag, semtoken-rag-lab), and in
#   .whl/gpu/      faiss-gpu-cu12 + its CUDA 12 runtime (installed apart and probed there)
#   .gpu_assets/   encoder and reader configs + tokenizers (random weights are built there)
#                  and the NarrativeQA subset the benchmark workloads are cut from
# Torch, transformers, sentence-transformers, numpy... are on the device already: never carried.
#
# Usage: bash scripts/gpu_wheels.sh [--no-faiss]
#   --no-faiss   skip the 46 MiB FAISS GPU download (CI's rehearsal; the check then reports
#                FAISS GPU as not carried)
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
mkdir -p .whl/gpu
# Our wheels, built with this venv's setuptools (no isolation: no download, a few seconds).
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl ./ ./lab
if [ "$FAISS" = 1 ]; then
  # Python 3.12 manylinux wheels for the device.  faiss-gpu-cu12 links libcudart.so.12 and
  # libcublas(Lt).so.12 (versioned symbols); the device image is CUDA 13.  The runtime is
  # small and carried; cuBLAS 12 (~600 MB) cannot be, so the check looks for it there and
  # reports FAISS GPU unusable when it is missing (faiss-gpu-cu13-cuvs needs libcuvs, far
  # over the limit; faiss-gpu 1.15.1 is 135 MB).
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl/gpu \
    "faiss-gpu-cu12==1.14.1.post1" "nvidia-cuda-runtime-cu12==12.8.90"
fi
"$PY" -m semtoken_lab.bench.synthetic export --out .gpu_assets >/dev/null

# What travels: tracked + untracked-not-ignored files, plus the two carried folders.
tree_bytes=$( { git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -r stat -c %s 2>/dev/null || true; } | awk '{s+=$1} END {print s+0}')
carry_bytes=$(du -sb .whl .gpu_assets | awk '{s+=$1} END {print s+0}')
total=$((tree_bytes + carry_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "wheels:      $(ls .whl/*.whl .whl/gpu/*.whl 2>/dev/null | xargs -n1 basename | tr '\n' ' ')"
echo "working tree $(mib "$tree_bytes") MiB + .whl/.gpu_assets $(mib "$carry_bytes") MiB" \
  "= $(mib "$total") MiB of the ${LIMIT_MIB} MiB per call"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "over the carry limit: run with --no-faiss or trim the working tree" >&2
  exit 1
fi
