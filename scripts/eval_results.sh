#!/usr/bin/env bash
# The evaluation runs behind docs/results.md (each resumable with --resume; outputs in runs/,
# which is not part of the repository).  Reader SmolLM2-135M (packaged), primary metrics only
# (--no-generate: answer log-likelihood and gold-answer recall), budgets in reader tokens.
# One process per core: --threads 1.
# Tables: .venv/bin/semtoken-rag eval --report-only --out runs/<dir> --methods ... --ratio R
set -u
cd "$(dirname "$0")/.."
mkdir -p runs
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E=".venv/bin/semtoken-rag eval --no-generate --no-progress --threads 1"

# --- Current defaults (entropy stage off; issues 12, 13, 15) -------------------------------
# NarrativeQA, 160 questions over 80 documents, bf16 reader (as the first run).
NQA="--data ../shared/data/narrativeqa/test.jsonl --per-doc 2 --limit 160 --reader-dtype bfloat16 --out runs/i12_nqa160 --resume"
$E $NQA --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-store-pq64,semtoken-entropy --ratio 0.5
$E $NQA --methods embed-filter,semtoken,semtoken-store-pq64,truncate --ratio 0.25
$E $NQA --methods semtoken,embed-filter --ratio 0.1
$E $NQA --methods selective-context --ratio 0.5
# HotpotQA sample in rag mode (one pool of 120/60-word chunks, FAISS top-5 per question).
H="--data ../shared/data/hotpotqa_dev_sample/dev.jsonl --mode rag --out runs/i12_hotpot_rag --resume"
$E $H --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-store-pq64,semtoken-entropy,semtoken-entropy-nomerge --ratio 0.5
$E $H --methods embed-filter,semtoken,semtoken-store-pq64 --ratio 0.25
$E $H --methods semtoken,embed-filter --ratio 0.1
# Summaries and boilerplate-heavy QA (L-Eval), contexts cut to 2,048 reader tokens first,
# gold answers/summaries capped at 128 words, fp32 reader.
C="--max-context-tokens 2048 --max-answer-words 128 --reader-dtype float32 --resume"
SUM=none,closed-book,semtoken,semtoken-entropy,embed-filter,truncate,truncate-lead,random
$E --data ../shared/data/leval/gov_report_summ.jsonl --out runs/i15_gov_report_summ $C --methods $SUM --ratio 0.25
$E --data ../shared/data/leval/meeting_summ.jsonl --out runs/i15_meeting_summ $C --methods $SUM --ratio 0.25
QA=none,closed-book,semtoken,semtoken-entropy,embed-filter,truncate,random
for s in financial_qa legal_contract_qa; do
  $E --data ../shared/data/leval/$s.jsonl --out runs/i15_$s $C --methods $QA --ratio 0.5 --limit 24
done

# Second pass (issue 15): every example of legal/financial (48/42), the other ratios, and the
# selective-context and LongLLMLingua baselines on the summary and boilerplate sets.
for s in legal_contract_qa financial_qa; do
  $E --data ../shared/data/leval/$s.jsonl --out runs/i15_$s $C --methods $QA --ratio 0.5 --limit 48
done
$E --data ../shared/data/leval/meeting_summ.jsonl --out runs/i15_meeting_summ $C --methods selective-context,longllmlingua --ratio 0.25
for s in legal_contract_qa financial_qa; do
  $E --data ../shared/data/leval/$s.jsonl --out runs/i15_$s $C --methods selective-context,longllmlingua --ratio 0.5 --limit 48
done
$E --data ../shared/data/leval/meeting_summ.jsonl --out runs/i15_meeting_summ $C --methods semtoken,embed-filter,truncate-lead,random --ratio 0.5,0.1
for s in legal_contract_qa financial_qa; do
  $E --data ../shared/data/leval/$s.jsonl --out runs/i15_$s $C --methods semtoken,embed-filter,truncate,random --ratio 0.25,0.1 --limit 48
done

# --- First runs (seed entropy defaults; the scientific_qa tables of docs/results.md) --------
L="--data ../shared/data/leval/scientific_qa.jsonl --per-doc 3 --limit 40 --out runs/sciqa40_long --resume"
$E $L --max-context-tokens 7680 --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-pooled --ratio 0.5,0.25
S="--data ../shared/data/leval/scientific_qa.jsonl --per-doc 3 --limit 40 --max-context-tokens 2048 --out runs/sciqa40 --resume"
$E $S --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-pooled --ratio 0.5
$E $S --methods embed-filter,semtoken,semtoken-pooled --ratio 0.25
