"""``semtoken-rag eval``: run the evaluation harness (see :mod:`semtoken_lab.eval.runner`)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from semtoken_rag.errors import InvalidInputError

from semtoken_lab.eval.records import ratio_label


def _floats(text: str) -> tuple[float, ...]:
    """Comma-separated ratios in (0, 1], or ``auto`` (SemToken's adaptive budget)."""
    from semtoken_lab.eval.records import AUTO

    try:
        values = tuple(
            AUTO if x.strip() == "auto" else float(x) for x in text.split(",") if x.strip()
        )
    except ValueError:
        msg = f"expected comma-separated numbers or 'auto', got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not values or any(not (0.0 < v <= 1.0 or v == AUTO) for v in values):
        raise argparse.ArgumentTypeError("ratios must be in (0, 1] or 'auto'")
    return values


def _names(text: str) -> tuple[str, ...]:
    from semtoken_lab.eval.methods import METHODS

    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if names == ("all",):
        return tuple(METHODS)
    bad = [n for n in names if n not in METHODS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(bad)}; choose from {', '.join(METHODS)} or 'all'"
        )
    return names


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval`` options."""
    parser.add_argument("--data", nargs="+", default=None, help="JSONL files or folders")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report of --out from its examples.jsonl (complete examples only)",
    )
    parser.add_argument("--format", choices=("auto", "longbench", "shared"), default="auto")
    parser.add_argument("--mode", choices=("context", "rag"), default="context")
    parser.add_argument(
        "--methods",
        type=_names,
        default=("none", "closed-book", "truncate", "embed-filter", "semtoken"),
        help="comma-separated method names, or 'all'",
    )
    parser.add_argument("--ratio", type=_floats, default=(0.5,), help="e.g. 0.5,0.25")
    parser.add_argument("--budget", type=int, default=None, help="absolute reader-token budget")
    parser.add_argument("--limit", type=int, default=None, help="examples per data file")
    parser.add_argument("--per-doc", type=int, default=None, help="questions per document at most")
    parser.add_argument("--reader", default="smollm2")
    parser.add_argument("--reader-dtype", default="auto", help="auto, float32, bfloat16, ...")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="skip keys already on disk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="examples in parallel (threads)")
    parser.add_argument(
        "--no-generate",
        dest="generate",
        action="store_false",
        help="log-likelihood and recall only (no generation, no task metrics)",
    )
    parser.add_argument("--top-k", type=int, default=5, help="rag mode: chunks retrieved")
    parser.add_argument("--chunk-words", type=int, default=120)
    parser.add_argument("--chunk-overlap", type=int, default=60)
    parser.add_argument(
        "--max-context-tokens",
        type=int,
        default=None,
        help="cut each full context to this many reader tokens (middle) before compressing",
    )
    parser.add_argument(
        "--max-answer-words",
        type=int,
        default=48,
        help="cut gold answers to this many words for the log-likelihood (same for all methods)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    _register_ray(parser)
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def _register_ray(parser: argparse.ArgumentParser) -> None:
    """Options of a distributed run (``--ray``; see docs/ray.md)."""
    from semtoken_rag.cli.ray_options import add_ray_options

    add_ray_options(
        parser,
        title="distributed evaluation on Ray (pip install 'semtoken-rag[ray]')",
        what="run examples",
        actors_default=None,
    )


def _run_eval(cfg: Any, args: argparse.Namespace) -> Any:
    """Serial run, or the Ray run with ``--ray``."""
    if getattr(args, "ray", None) is None:
        from semtoken_lab.eval.runner import run_eval

        return run_eval(cfg)
    from semtoken_lab.eval.distributed import run_eval_on_ray

    return run_eval_on_ray(
        cfg,
        address=args.ray or None,
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        connect_timeout=args.connect_timeout,
    )


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the summary table."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from semtoken_lab.eval.runner import RunConfig, report_only

    if args.report_only:
        result = report_only(args.out, methods=args.methods, ratios=args.ratio)
        print(f"report of {len(result.records)} records rewritten in {result.out}")
        return 0
    if not args.data:
        raise InvalidInputError("--data is required (unless --report-only)")
    if getattr(args, "ray", None) is not None:  # before any loading when the extra is missing
        from semtoken_rag.distributed.cluster import ray_module

        ray_module()

    cfg = RunConfig(
        data=tuple(args.data),
        out=args.out,
        fmt=args.format,
        mode=args.mode,
        methods=args.methods,
        ratios=args.ratio,
        budget=args.budget,
        limit=args.limit,
        per_doc=args.per_doc,
        reader=args.reader,
        reader_dtype=args.reader_dtype,
        resume=args.resume,
        seed=args.seed,
        workers=args.workers,
        generate=args.generate,
        top_k=args.top_k,
        chunk_size=args.chunk_words,
        chunk_overlap=args.chunk_overlap,
        max_context_tokens=args.max_context_tokens,
        max_answer_words=args.max_answer_words,
        progress=args.progress,
    )
    result = _run_eval(cfg, args)
    print(f"{result.new_records} new records; outputs in {result.out}")
    for row in result.summary:
        ret = row.loglik_retained
        print(
            f"{row.dataset:24s} {row.method:20s} r={ratio_label(row.ratio):<5s} n={row.n:<4d} "
            f"achieved={row.achieved_ratio:.3f} LL={row.answer_loglik:.3f} "
            f"retained={'–' if math.isnan(ret) else f'{ret:.2f}'} "
            f"recall={row.answer_recall:.3f}",
            file=sys.stdout,
        )
    return 0
