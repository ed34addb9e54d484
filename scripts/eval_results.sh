#!/usr/bin/env bash
# The evaluation runs behind docs/results.md (each resumable with --resume; outputs in runs/).
# Reader SmolLM2-135M (packaged), primary metrics only (--no-generate: answer log-likelihood and
# gold-answer recall), budgets in reader tokens.  One process per core: --threads 1.
# Tables: .venv/bin/semtoken-rag eval --report-only --out runs/<dir> --methods ... --ratio R
set -u
cd "$(dirname "$0")/.."
mkdir -p runs
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E=".venv/bin/semtoken-rag eval --no-generate --no-progress --threads 1"
# The NarrativeQA run was started before the CPU dtype default changed: it stays in bf16 throughout.
NQA="--data ../shared/data/narrativeqa/test.jsonl --per-doc 2 --limit 160 --reader-dtype bfloat16 --out runs/nqa160 --resume"
# NarrativeQA, 160 questions over 80 documents: every method at 0.5, the main ones at 0.25.
$E $NQA --methods none,closed-book,truncate,random,embed-filter,selective-context,longllmlingua,semtoken,semtoken-pooled,semtoken-nomerge,semtoken-noentropy,semtoken-noquery --ratio 0.5
$E $NQA --methods truncate,embed-filter,semtoken,semtoken-pooled --ratio 0.25
# HotpotQA sample in rag mode (one pool of 120/60-word chunks, FAISS top-5 per question).
H="--data ../shared/data/hotpotqa_dev_sample/dev.jsonl --mode rag --out runs/hotpot_rag --resume"
$E $H --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-pooled,semtoken-nomerge,semtoken-noentropy --ratio 0.5
$E $H --methods embed-filter,semtoken,semtoken-pooled --ratio 0.25
# L-Eval scientific_qa (Qasper), 40 questions over 14 papers, at full length (cut to 7,680
# reader tokens so question + answer fit SmolLM2's 8k window) ...
L="--data ../shared/data/leval/scientific_qa.jsonl --per-doc 3 --limit 40 --out runs/sciqa40_long --resume"
$E $L --max-context-tokens 7680 --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-pooled --ratio 0.5,0.25
# ... and cut to 2,048 tokens first (the shorter, cheaper variant, with the entropy ablation).
S="--data ../shared/data/leval/scientific_qa.jsonl --per-doc 3 --limit 40 --max-context-tokens 2048 --out runs/sciqa40 --resume"
$E $S --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-pooled,semtoken-noentropy --ratio 0.5
$E $S --methods embed-filter,semtoken,semtoken-pooled --ratio 0.25
