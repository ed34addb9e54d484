#!/usr/bin/env bash
# The evaluation runs behind docs/results.md, "Document-sliced fingerprints" (issue 23) and
# "Adaptive budget" (issue 26).  Resumable (--resume); outputs in runs/ (not in the repository).
# Reader SmolLM2-135M (packaged); primary metrics only (--no-generate); one thread per process.
set -u
cd "$(dirname "$0")/.."
mkdir -p runs
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E=".venv/bin/semtoken-rag eval --no-generate --no-progress --threads 1 --resume"
HP="--data ../shared/data/hotpotqa_dev_sample/dev.jsonl --mode rag --out runs/i26_hotpot_rag"
NQ="--data ../shared/data/narrativeqa/test.jsonl --per-doc 2 --limit 160 --reader-dtype bfloat16"
C="--max-context-tokens 2048 --max-answer-words 128 --reader-dtype float32"
case "${1:-}" in
  # Issue 23: chunk-alone (semtoken) vs document-sliced (semtoken-docs), rag mode.
  i23-hotpot) $E $HP --methods none,closed-book,semtoken,semtoken-docs --ratio 0.5,0.25 ;;
  i23-nqa) $E $NQ --mode rag --out runs/i23_nqa_rag --methods none,closed-book,semtoken,semtoken-docs --ratio 0.5,0.25 ;;
  # Issue 26, step 1: the auto budget (and fixed ratios for the curve).
  i26-hotpot) $E $HP --methods none,closed-book,semtoken --ratio auto,0.5,0.25 ;;
  i26-nqa) $E $NQ --out runs/i26_nqa --methods none,closed-book,semtoken --ratio auto,0.5,0.25 ;;
  # L-Eval, one set per call (two calls run side by side on two cores): auto first, then fixed
  # SemToken and embed-filter at the mean ratio auto reached on the set.  LongLLMLingua at that
  # ratio costs 1-4 minutes per example here: run on the first N examples with
  #   i26-matched runs/i26_SET R --data ../shared/data/leval/SET.jsonl --max-context-tokens 2048
  #   --max-answer-words 128 --reader-dtype float32 --methods longllmlingua --limit N
  i26-leval) s=$2; out=runs/i26_$s; data="--data ../shared/data/leval/$s.jsonl"
    $E $data --out $out $C --methods none,closed-book,semtoken --ratio auto,0.5,0.25 || exit 1
    r=$(.venv/bin/python -c "import sys; from pathlib import Path; from semtoken_lab.eval.auto_report import analyse; print(round(analyse(Path(sys.argv[1]))['auto_ratio']['value'], 3))" $out)
    $E $data --out $out $C --methods semtoken,embed-filter --ratio "$r" ;;
  # Every legal_contract_qa prompt reads as a summary request ("Highlight the parts ..."): the
  # relevance objective instead, at auto and the fixed ratios, into the same run.
  i26-legal-objective) $E --data ../shared/data/leval/legal_contract_qa.jsonl \
      --out runs/i26_legal_contract_qa $C --methods semtoken-relevance --ratio auto,0.5,0.25 ;;
  # Issue 26, step 2: fixed SemToken and embed-filter at auto's mean achieved ratio R of each
  # set (printed by `python -m semtoken_lab.eval.auto_report OUT`), into the same run, with the
  # set's own data options: i26-matched OUT R --data ... [--methods ...,longllmlingua]
  i26-matched) out=$2; r=$3; shift 3
    $E --out "$out" --methods semtoken,embed-filter --ratio "$r" "$@" ;;
  *) echo "usage: $0 i23-hotpot|i23-nqa|i26-hotpot|i26-nqa|i26-leval SET|i26-legal-objective|i26-matched OUT R ARGS" >&2; exit 2 ;;
esac
