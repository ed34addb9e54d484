"""Issue 23, point 3: the share of examples whose kept text changes when fingerprints are sliced
from whole documents (``semtoken-docs``) instead of each chunk encoded alone (``semtoken``).

Replays the harness's own contexts and budgets (no reader pass), so the examples and budgets are
those of the evaluation run with the same options:

    python scripts/docs_fidelity.py --data ../shared/data/hotpotqa_dev_sample/dev.jsonl --mode rag
    python scripts/docs_fidelity.py --data ../shared/data/narrativeqa/test.jsonl --mode rag \
        --per-doc 2 --limit 160
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from semtoken_lab.eval.data import load_examples
from semtoken_lab.eval.run_config import RunConfig
from semtoken_lab.eval.runner import Runner
from semtoken_lab.eval.selection import CHUNK_SEP


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--mode", default="rag")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--per-doc", type=int, default=None)
    parser.add_argument("--ratios", default="0.5,0.25")
    args = parser.parse_args()
    cfg = RunConfig(
        data=(args.data,), out=Path("/tmp/docs_fidelity"), mode=args.mode, limit=args.limit,
        per_doc=args.per_doc, methods=("semtoken", "semtoken-docs"),
    )  # fmt: skip
    runner = Runner(cfg, reader=object())  # no reader: only the compressions are compared
    examples = load_examples(cfg.data, limit=cfg.limit, per_doc=cfg.per_doc)
    contexts = runner.contexts(examples)
    alone, sliced = runner.method("semtoken"), runner.method("semtoken-docs")
    out = {}
    for ratio in (float(r) for r in args.ratios.split(",")):
        changed = 0
        for ex, chunks in zip(examples, contexts, strict=True):
            budget = max(1, round(ratio * runner.env.count(CHUNK_SEP.join(chunks))))
            changed += alone(chunks, ex.question, budget) != sliced(chunks, ex.question, budget)
        out[ratio] = {"examples": len(examples), "changed": changed,
                      "share": round(changed / max(1, len(examples)), 3)}  # fmt: skip
    print(json.dumps({"data": args.data, "mode": args.mode, "by_ratio": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
