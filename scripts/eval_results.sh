#!/usr/bin/env bash
# The evaluation runs behind docs/results.md (each resumable with --resume; outputs in runs/).
# Reader SmolLM2-135M (packaged), primary metrics only (--no-generate: answer log-likelihood and
# gold-answer recall), budgets in reader tokens.
set -u
cd "$(dirname "$0")/.."
mkdir -p runs
E=".venv/bin/semtoken-rag eval --no-generate --no-progress"
# The NarrativeQA run was started before the CPU dtype default changed: it stays in bf16 throughout.
NQA_DTYPE="--reader-dtype bfloat16"
NQA="--data ../shared/data/narrativeqa/test.jsonl --per-doc 2 --limit 160"
# NarrativeQA, 160 questions over 80 documents: every method at 0.5, the main ones at 0.25.
$E $NQA $NQA_DTYPE --methods none,closed-book,truncate,random,embed-filter,selective-context,semtoken,semtoken-nomerge,semtoken-noentropy,semtoken-noquery \
  --ratio 0.5 --out runs/nqa160 --resume
$E $NQA $NQA_DTYPE --methods truncate,embed-filter,semtoken --ratio 0.25 --out runs/nqa160 --resume
# HotpotQA sample in rag mode (one pool of 120/60-word chunks, FAISS top-5 per question).
H="--data ../shared/data/hotpotqa_dev_sample/dev.jsonl --mode rag --out runs/hotpot_rag --resume"
$E $H --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-nomerge,semtoken-noentropy --ratio 0.5
$E $H --methods embed-filter,semtoken --ratio 0.25
# L-Eval scientific_qa (Qasper), 40 questions, full contexts cut to 2,048 reader tokens first.
S="--data ../shared/data/leval/scientific_qa.jsonl --per-doc 3 --limit 40 --max-context-tokens 2048 --out runs/sciqa40 --resume"
$E $S --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-noentropy --ratio 0.5
$E $S --methods embed-filter,semtoken --ratio 0.25
# LongLLMLingua (slow on CPU) on 20 NarrativeQA questions, one per document.
$E --data ../shared/data/narrativeqa/test.jsonl --per-doc 1 --limit 20 \
  --methods none,closed-book,embed-filter,semtoken,longllmlingua --ratio 0.5 --out runs/nqa_lingua20 --resume
