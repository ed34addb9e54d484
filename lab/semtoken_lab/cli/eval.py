"""``semtoken-rag eval``: run the evaluation harness (see :mod:`semtoken_lab.eval.runner`)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from semtoken_rag.cli import args as cli_args
from semtoken_rag.cli.args import integer
from semtoken_rag.errors import InvalidInputError

from semtoken_lab.eval.records import AUTO, ratio_label

#: Comma-separated ratios in (0, 1], or ``auto`` (SemToken's adaptive budget).
_floats = cli_args.number_list("--ratio", 0.0, 1.0, low_open=True, words={"auto": AUTO})

#: Bounds of the count options (explicit, so a typo cannot start an endless run).
MAX_EXAMPLES = 10**7
MAX_TOKENS = 10**7
MAX_WORDS = 10**6
MAX_WORKERS = 1024
MAX_TOP_K = 10**4
#: Defaults of the options that have one but must be told apart from "not given".
DEFAULT_METHODS = ("none", "closed-book", "truncate", "embed-filter", "semtoken")
DEFAULT_RATIOS = (0.5,)
RAG_DEFAULTS = {"top_k": 5, "chunk_words": 120}


def _names(text: str) -> tuple[str, ...]:
    from semtoken_lab.eval.methods import METHODS

    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if names == ("all",):
        return tuple(METHODS)
    bad = [n for n in names if n not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(bad)}; choose from {', '.join(METHODS)} or 'all'"
        )
    return names


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval`` options, group by group in the order ``--help`` lists them."""
    _add_data_options(parser)
    _add_selection_options(parser)
    _add_run_options(parser)
    _add_rag_options(parser)
    _add_length_options(parser)
    parser.add_argument(
        "--threads", type=integer("--threads", high=4096), default=None,
        help="torch CPU threads, 1 to 4096",
    )  # fmt: skip
    _register_ray(parser)
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    """What is evaluated: the data, its format, the mode and the methods."""
    parser.add_argument("--data", nargs="+", default=None, help="JSONL files or folders")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report of --out from its examples.jsonl (complete examples only; "
        "--methods and --ratio/--budget, when given, select the rows)",
    )
    parser.add_argument("--format", choices=("auto", "longbench", "shared"), default="auto")
    parser.add_argument("--mode", choices=("context", "rag"), default="context")
    parser.add_argument(
        "--methods",
        type=_names,
        default=None,
        help=f"comma-separated method names, or 'all' (default {','.join(DEFAULT_METHODS)})",
    )


def _add_selection_options(parser: argparse.ArgumentParser) -> None:
    """The compression target (ratios or one token budget, not both) and the examples taken.

    The defaults are ``None`` so that ``--report-only`` can tell "select these rows" from
    "not given"; :func:`run_config` fills them in.
    """
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--ratio", type=_floats, default=None,
        help="comma-separated ratios in (0, 1] or 'auto', e.g. 0.5,0.25 (default 0.5)",
    )  # fmt: skip
    target.add_argument(
        "--budget", type=integer("--budget", high=MAX_TOKENS), default=None,
        help=f"absolute reader-token budget instead of ratios, 1 to {MAX_TOKENS:,}",
    )  # fmt: skip
    parser.add_argument(
        "--limit", type=integer("--limit", high=MAX_EXAMPLES), default=None,
        help=f"examples per data file, 1 to {MAX_EXAMPLES:,}",
    )  # fmt: skip
    parser.add_argument(
        "--per-doc", type=integer("--per-doc", high=MAX_EXAMPLES), default=None,
        help="questions per document at most (with or without --limit)",
    )  # fmt: skip


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The reader, the output folder and how the examples are run."""
    parser.add_argument("--reader", default="smollm2")
    parser.add_argument("--reader-dtype", default="auto", help="auto, float32, bfloat16, ...")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="skip keys already on disk")
    parser.add_argument(
        "--seed", type=integer("--seed", low=0, high=2**32 - 1), default=0,
        help="seed of the random baseline, 0 to 2^32-1",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=integer("--workers", high=MAX_WORKERS), default=None,
        help=f"examples in parallel (threads), 1 to {MAX_WORKERS} (default 1; with --ray "
        "use --actors)",
    )  # fmt: skip
    parser.add_argument(
        "--no-generate",
        dest="generate",
        action="store_false",
        help="log-likelihood and recall only (no generation, no task metrics)",
    )


def _add_rag_options(parser: argparse.ArgumentParser) -> None:
    """Retrieval of ``--mode rag`` (refused in ``context`` mode, see :func:`check_options`)."""
    parser.add_argument(
        "--top-k", type=integer("--top-k", high=MAX_TOP_K), default=None,
        help=f"rag mode: chunks retrieved, 1 to {MAX_TOP_K:,} (default 5)",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-words", type=integer("--chunk-words", high=MAX_WORDS), default=None,
        help=f"rag mode: words per chunk of the pool, 1 to {MAX_WORDS:,} (default 120)",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-overlap", type=integer("--chunk-overlap", low=0, high=MAX_WORDS), default=None,
        help="rag mode: words shared by consecutive chunks, below --chunk-words (default: half "
        "of --chunk-words)",
    )  # fmt: skip


def _add_length_options(parser: argparse.ArgumentParser) -> None:
    """Caps on contexts and gold answers, the same for every method so that rows compare."""
    parser.add_argument(
        "--max-context-tokens", type=integer("--max-context-tokens", high=MAX_TOKENS),
        default=None,
        help="cut each full context to this many reader tokens (middle) before compressing, "
        f"1 to {MAX_TOKENS:,}",
    )  # fmt: skip
    parser.add_argument(
        "--max-answer-words", type=integer("--max-answer-words", high=MAX_WORDS), default=48,
        help="cut gold answers to this many words for the log-likelihood (same for all "
        f"methods), 1 to {MAX_WORDS:,}",
    )  # fmt: skip


def _register_ray(parser: argparse.ArgumentParser) -> None:
    """Options of a distributed run (``--ray``; see docs/ray.md)."""
    from semtoken_rag.cli.ray_options import add_ray_options

    add_ray_options(
        parser,
        title="distributed evaluation on Ray (pip install './semtoken-rag[ray]')",
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


def check_options(ns: argparse.Namespace) -> None:
    """Refuse options that the run would ignore (one line, before anything loads).

    Raises:
        InvalidInputError: rag-only options in ``context`` mode, ``--chunk-overlap`` not below
            ``--chunk-words``, ``--workers`` with ``--ray``, actor options without it.
    """
    from semtoken_rag.cli.ray_options import check_ray_options

    if ns.report_only:
        return
    if ns.mode != "rag":
        rag_only = {"--top-k": ns.top_k, "--chunk-words": ns.chunk_words,
                    "--chunk-overlap": ns.chunk_overlap}  # fmt: skip
        given = [flag for flag, value in rag_only.items() if value is not None]
        if given:
            raise InvalidInputError(
                f"{', '.join(given)} apply to --mode rag only (this run is --mode {ns.mode})"
            )
    words = ns.chunk_words or RAG_DEFAULTS["chunk_words"]
    if ns.chunk_overlap is not None and ns.chunk_overlap >= words:
        raise InvalidInputError(
            f"--chunk-overlap must be below --chunk-words {words}, got {ns.chunk_overlap}"
        )
    if getattr(ns, "ray", None) is not None and ns.workers is not None:
        raise InvalidInputError(
            f"--workers {ns.workers} runs threads in this process; with --ray the examples "
            "run on Ray actors: use --actors"
        )
    check_ray_options(ns)


def run_config(ns: argparse.Namespace) -> Any:
    """The :class:`~semtoken_lab.eval.runner.RunConfig` the options describe.

    Raises:
        InvalidInputError: see :func:`check_options`; no ``--data``.
    """
    from semtoken_lab.eval.run_config import RunConfig

    check_options(ns)
    if not ns.data:
        raise InvalidInputError("--data is required (unless --report-only)")
    cli_args.check_output(ns.out, "--out", folder=True)
    words = ns.chunk_words or RAG_DEFAULTS["chunk_words"]
    return RunConfig(
        data=tuple(ns.data),
        out=ns.out,
        fmt=ns.format,
        mode=ns.mode,
        methods=ns.methods or DEFAULT_METHODS,
        ratios=ns.ratio or DEFAULT_RATIOS,
        budget=ns.budget,
        limit=ns.limit,
        per_doc=ns.per_doc,
        reader=ns.reader,
        reader_dtype=ns.reader_dtype,
        resume=ns.resume,
        seed=ns.seed,
        workers=ns.workers or 1,
        generate=ns.generate,
        top_k=ns.top_k or RAG_DEFAULTS["top_k"],
        chunk_size=words,
        chunk_overlap=words // 2 if ns.chunk_overlap is None else ns.chunk_overlap,
        max_context_tokens=ns.max_context_tokens,
        max_answer_words=ns.max_answer_words,
        progress=ns.progress,
    )


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the summary table."""
    from semtoken_lab.eval.rereport import report_only

    if args.report_only:
        ratios = (float(args.budget),) if args.budget else (args.ratio or ())
        result = report_only(args.out, methods=args.methods or (), ratios=ratios)
        print(f"report of {len(result.records)} records rewritten in {result.out}")
        return 0
    cfg = run_config(args)
    if getattr(args, "ray", None) is not None:  # before any loading when the extra is missing
        from semtoken_rag.distributed.cluster import ray_module

        ray_module()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
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
