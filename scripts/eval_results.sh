#!/usr/bin/env bash
# Evaluation runs behind docs/results.md (sequential, resumable).
set -u
cd "$(dirname "$0")/.."
mkdir -p runs
E=".venv/bin/semtoken-rag eval --no-generate --threads 2 --no-progress"
NQA="--data ../shared/data/narrativeqa/test.jsonl --per-doc 2 --limit 160"
$E $NQA --methods none,closed-book,truncate,random,embed-filter,selective-context,semtoken,semtoken-nomerge,semtoken-noentropy,semtoken-noquery --ratio 0.5 --out runs/nqa160 --resume > runs/nqa160_05.log 2>&1
$E $NQA --methods none,closed-book,truncate,embed-filter,semtoken --ratio 0.25 --out runs/nqa160 --resume > runs/nqa160_025.log 2>&1
$E --data ../shared/data/hotpotqa_dev_sample/dev.jsonl --mode rag --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-nomerge,semtoken-noentropy --ratio 0.5,0.25 --out runs/hotpot_rag --resume > runs/hotpot_rag.log 2>&1
$E --data ../shared/data/leval/scientific_qa.jsonl --per-doc 3 --limit 40 --max-context-tokens 4096 --methods none,closed-book,truncate,random,embed-filter,semtoken,semtoken-nomerge,semtoken-noentropy --ratio 0.5,0.25 --out runs/sciqa40 --resume > runs/sciqa40.log 2>&1
$E --data ../shared/data/narrativeqa/test.jsonl --per-doc 1 --limit 50 --methods none,closed-book,embed-filter,semtoken,longllmlingua --ratio 0.5 --out runs/nqa_lingua50 --resume > runs/nqa_lingua50.log 2>&1
echo done > runs/driver.done
