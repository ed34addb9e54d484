#!/usr/bin/env bash
# The KV-budget runs behind docs/kv_budget.md (resumable: rerun to continue; outputs in runs/).
# Reader SmolLM2-135M (packaged, fp32 on a CPU without AMX), one thread per process.
# Tables: .venv/bin/semtoken-rag kv-eval --report-only --out runs/<dir>
set -u
cd "$(dirname "$0")/.."
mkdir -p runs
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
K="nice -n 10 .venv/bin/semtoken-rag kv-eval --threads 1"
# NarrativeQA: 60 questions over the first 30 documents (2 per document); prompts ~300-1,200
# tokens; gold answers are short.
$K --data ../shared/data/narrativeqa/test.jsonl --per-doc 2 --limit 60 --out runs/kv_nqa60
# Long output: L-Eval gov_report_summ (10 reports), contexts cut so the prompt is 4,096 tokens,
# gold summaries capped at 128 reader tokens (127 decoding steps each).  Its decode timings are
# the 4k-prompt speed check.
$K --data ../shared/data/leval/gov_report_summ.jsonl --max-prompt-tokens 4096 \
  --max-answer-tokens 128 --out runs/kv_gov10
# Decode speed at 4k-token prompts, lockstep (every method decodes the same token in turn, so a
# shared machine's load hits all alike): 5 gov reports, 64 steps, budget 0.5.
$K --data ../shared/data/leval/gov_report_summ.jsonl --limit 5 --max-prompt-tokens 4096 \
  --speed-steps 64 --budgets 0.5 --policies semtoken,streaming,snapkv --out runs/kv_speed4k
# The paper's "w/o AR-budget" ablation in this frame: SemToken's scores from the prompt's queries
# only (semtoken-static) against re-scoring every 8 decoding steps, on the long outputs.
$K --data ../shared/data/leval/gov_report_summ.jsonl --limit 5 --max-prompt-tokens 4096 \
  --max-answer-tokens 128 --budgets 0.5,0.25 --policies semtoken,semtoken-static \
  --prompt-ratios "" --combine "" --out runs/kv_gov5_static
