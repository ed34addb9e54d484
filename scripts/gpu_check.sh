#!/usr/bin/env bash
# The GPU path in one call: install from carried wheels (FAISS: a CPU build), build random-weight
# models, run the GPU tests (-rs: skips are listed with their reasons), run the GPU benchmark,
# write JSON + markdown under $OUT.  Every step has a time limit and the whole run stays under
# 8 minutes on the device, so one call does everything and a rerun still fits the budget.
#
# Here, first:   bash scripts/gpu_wheels.sh        (fills .whl/ and .gpu_assets/, git-ignored)
# On the device: device run, carry [".whl", ".gpu_assets"], timeout_s 540,
#                command "bash scripts/gpu_check.sh"
# Rehearsal:     bash scripts/gpu_check.sh --cpu   (same steps here: tests skip with reasons,
#                benchmark on the CPU at small sizes);  --cpu --smoke: smallest (CI)
#
# Outputs ($OUT, default ./gpu_out; at most 8 files come back from the device):
#   gpu_check.log, summary.json, summary.md, gpu_tests.xml, gpu_agreement.json,
#   bench.json, bench.md, bench.png
# Exit status: 0 when every step ran (test failures and missed targets are reported in
# summary.md, not hidden); 1 when a step failed or timed out.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
MODE=gpu
SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --cpu) MODE=cpu ;;
    --smoke) SMOKE=1 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$REPO/gpu_out}
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/semtoken-gpu.XXXXXX")
LOG=$OUT/gpu_check.log
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
START=$SECONDS
echo "$MODE$([ $SMOKE = 1 ] && echo ' smoke')" >"$WORK/mode"

if [ "$MODE" = gpu ]; then
  PY=${PYTHON:-python3}   # the device image's Python with torch (never reinstalled)
  DEADLINE=450            # seconds for everything; the device call is given 540
else
  PY=${PYTHON:-$REPO/.venv/bin/python}
  DEADLINE=${GPU_CHECK_DEADLINE:-1500}
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg SEMTOKEN_CACHE_DIR="$WORK/cache"
FAILED=0

left() { echo $((DEADLINE - (SECONDS - START))); }
# step NAME MAX_SECONDS CMD...: run with a time limit (capped by what is left), log rc + time.
step() {
  local name=$1 max=$2 rem t0 rc
  shift 2
  rem=$(left)
  [ "$rem" -lt "$max" ] && max=$rem
  if [ "$max" -le 5 ]; then
    echo "== $name: skipped, no time left"
    echo "$name 124 0" >>"$WORK/steps.txt"
    FAILED=1
    return 124
  fi
  echo "== $name (limit ${max}s, $(($SECONDS - START))s elapsed)"
  t0=$SECONDS
  timeout --kill-after=10 "$max" "$@"
  rc=$?
  echo "$name $rc $((SECONDS - t0))" >>"$WORK/steps.txt"
  echo "== $name: rc $rc in $((SECONDS - t0))s"
  return $rc
}

# 1. Machine facts.
step env 60 "$PY" scripts/gpu_check_helper.py env "$WORK/env.json" || FAILED=1
[ "$MODE" = gpu ] && { nvidia-smi || true; }

# 2. Our wheels into a temporary site directory (no index, no deps: torch and friends are the
#    machine's own).
SITE=$WORK/site
if ls .whl/*.whl >/dev/null 2>&1; then
  step install 90 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --disable-pip-version-check --target "$SITE" .whl/*.whl || FAILED=1
else
  echo "== install: no wheels in .whl/ (run scripts/gpu_wheels.sh here first)"
  echo "install 1 0" >>"$WORK/steps.txt"
  FAILED=1
fi
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}

# 3. FAISS, CPU build (the store's codecs; the library has no GPU FAISS code): the carried
#    faiss-cpu wheel installed apart and used when it imports, else the machine's own faiss (a
#    CPU build here).  Without one the benchmark's store section is skipped (a finding).
if ls .whl/faiss/faiss_cpu*.whl >/dev/null 2>&1; then
  step faiss-install 90 "$PY" -m pip install -q --no-index --no-deps --no-compile \
    --no-cache-dir --disable-pip-version-check --target "$WORK/faiss" .whl/faiss/faiss_cpu*.whl \
    && PYTHONPATH=$WORK/faiss:$PYTHONPATH "$PY" -c "import faiss" \
    && export PYTHONPATH=$WORK/faiss:$PYTHONPATH
else
  echo "== faiss-install: no faiss-cpu wheel in .whl/faiss/ (gpu_wheels.sh --no-faiss)"
fi
# From here on every Python step runs outside the repository, so the installed wheels (not the
# working tree's sources) are what is imported: python -m puts the current directory first.
cd "$WORK" || exit 1
# rc 3 = no faiss importable: the store section is skipped (summary "faiss"), not a failure.
"$PY" "$REPO/scripts/gpu_check_helper.py" faiss "$WORK/faiss.json" && HAVE_FAISS=1 || HAVE_FAISS=0

# 4. Random-weight encoder and reader from the carried configs and tokenizers.
MODELS=$WORK/models
step models 120 "$PY" -m semtoken_lab.bench.synthetic build --assets "$REPO/.gpu_assets" \
  --out "$MODELS" || FAILED=1
export SEMTOKEN_GPU_MODELS=$MODELS SEMTOKEN_GPU_DATA=$REPO/.gpu_assets/data
export SEMTOKEN_GPU_REPORT=$OUT/gpu_agreement.json
"$PY" -c "import semtoken_rag, semtoken_lab; print('testing', semtoken_rag.__file__, semtoken_lab.__file__)"

# 5. The GPU tests, from a directory outside the repository so the installed wheels are what
#    is imported (importlib mode: pytest adds no repository path).
if [ "$MODE" = gpu ]; then TEST_LIMIT=200; else TEST_LIMIT=600; fi
(cd "$WORK" && step tests "$TEST_LIMIT" "$PY" -m pytest -p no:cacheprovider \
  --import-mode=importlib -c "$REPO/pyproject.toml" --rootdir "$REPO" -m gpu -rs -q \
  --junitxml="$OUT/gpu_tests.xml" "$REPO/tests/test_gpu.py")
rc=$(tail -n 1 "$WORK/steps.txt" | awk '{print $2}')
# pytest: 0 all passed, 1 some failed (reported in the summary), 5 none collected/all deselected.
case "$rc" in 0 | 1) ;; *) FAILED=1 ;; esac

# 6. The benchmark, on the device (CUDA) or, rehearsing, on the CPU at small sizes.
BENCH=(-m semtoken_rag.cli.main bench --out "$OUT" --encoder --encoder-model "$MODELS/minilm"
  --reader "$MODELS/smollm2" --data "$REPO/.gpu_assets/data" --baselines embed-filter)
[ "$HAVE_FAISS" = 1 ] || BENCH+=(--skip-store)
if [ "$MODE" = gpu ]; then
  BENCH+=(--device cuda --sizes 1000,4000,16000,64000 --repeats 5 --e2e-sizes 2000,4000,8000
    --e2e-ratios 0.5,0.25 --e2e-repeats 3 --max-new-tokens 16 --encoder-tokens 64000
    --encoder-batch-sizes 32,64,128,256,512 --store-contexts 50)
elif [ "$SMOKE" = 1 ]; then
  BENCH+=(--device cpu --sizes 300 --repeats 1 --e2e-sizes 300 --e2e-ratios 0.5
    --e2e-repeats 1 --max-new-tokens 2 --encoder-tokens 600 --encoder-batch-sizes 32
    --encoder-dtypes float32 --store-contexts 2 --threads 1)
else
  BENCH+=(--device cpu --sizes 300,1000 --repeats 1 --e2e-sizes 300,600 --e2e-ratios 0.5
    --e2e-repeats 1 --max-new-tokens 4 --encoder-tokens 2000 --encoder-batch-sizes 32,128
    --store-contexts 3)
fi
if [ "$MODE" = gpu ]; then BENCH_LIMIT=270; else BENCH_LIMIT=1200; fi
step bench "$BENCH_LIMIT" "$PY" "${BENCH[@]}" || FAILED=1

# 7. Summary: printed last, so the device call's output tail holds it.
"$PY" "$REPO/scripts/gpu_check_helper.py" summary "$WORK" "$OUT" || FAILED=1
echo "== done in $((SECONDS - START))s, outputs in $OUT: $(ls "$OUT" | tr '\n' ' ')"
cd "$REPO" && { [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"; }
exit $FAILED
