"""``semtoken-rag kv-eval``: evaluate generation-time KV budgets (:mod:`semtoken_lab.eval.kv_eval`).

Why a subcommand of its own rather than an option of ``eval``: ``eval`` compresses prompts and
scores each method with one batched forward pass; a KV budget must be scored token by token from
a prefilled cache, with other baselines (StreamingLLM, SnapKV) and other figures (KV bytes over
the generation, decode speed).  Sharing the flag space would make most combinations meaningless.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING

from semtoken_rag.cli import args as cli_args
from semtoken_rag.cli.args import integer

if TYPE_CHECKING:
    from semtoken_lab.eval.kv_eval import KVEvalConfig

#: Bounds of the count options (explicit, so a typo cannot start an endless run).
MAX_EXAMPLES = 10**7
MAX_TOKENS = 10**7
MAX_STEPS = 10**6

_budgets = cli_args.number_list("--budgets", 0.0, 1.0, low_open=True)
#: Like ``--budgets`` but may be empty (``""``: none).
_ratios = cli_args.number_list("--prompt-ratios", 0.0, 1.0, low_open=True, allow_empty=True)
_FRACTION = cli_args.number("--combine", 0.0, 1.0, low_open=True)


def _pairs(text: str) -> tuple[tuple[float, float], ...]:
    """``RATIO:BUDGET`` pairs, both in (0, 1] (``""``: none)."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        try:
            r, b = (_FRACTION(v) for v in item.split(":"))
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(
                f"--combine must be RATIO:BUDGET pairs of numbers in (0, 1], got {item!r}"
            ) from None
        out.append((r, b))
    return tuple(out)


_pairs.__name__ = "pairs"
cli_args.mark_numeric(_pairs, allow_empty=True)


def _names(text: str) -> tuple[str, ...]:
    from semtoken_lab.reader.kv_budget import KV_POLICIES

    names = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [n for n in names if n not in KV_POLICIES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown policies {bad}; choose from {sorted(KV_POLICIES)}"
        )
    return names


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``kv-eval`` options, group by group in the order ``--help`` lists them."""
    _add_data_options(parser)
    _add_method_options(parser)
    _add_scoring_options(parser)
    _add_run_options(parser)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    """The data, the output folder and the examples taken."""
    parser.add_argument("--data", nargs="+", default=None, help="JSONL files or folders")
    parser.add_argument("--out", required=True, help="output folder (resumed when it exists)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report of --out")
    parser.add_argument(
        "--limit", type=integer("--limit", high=MAX_EXAMPLES), default=None,
        help=f"examples per data file, 1 to {MAX_EXAMPLES:,}",
    )  # fmt: skip
    parser.add_argument(
        "--per-doc", type=integer("--per-doc", high=MAX_EXAMPLES), default=None,
        help="questions per document at most",
    )  # fmt: skip


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    """The methods compared: KV budgets per policy, prompt ratios, and the two combined."""
    parser.add_argument(
        "--budgets", type=_budgets, default=(0.5, 0.25),
        help="KV budgets, comma-separated fractions in (0, 1], e.g. 0.5,0.25",
    )  # fmt: skip
    parser.add_argument(
        "--policies",
        type=_names,
        default=("semtoken", "semtoken-cos", "streaming", "snapkv"),
        help="KV policies",
    )
    parser.add_argument(
        "--prompt-ratios",
        type=_ratios,
        default=(0.5, 0.25),
        help="SemToken prompt ratios alone, in (0, 1] ('' for none)",
    )
    parser.add_argument(
        "--combine",
        type=_pairs,
        default=((0.5, 0.5),),
        help="prompt ratio:KV budget pairs, both in (0, 1] ('' for none)",
    )
    parser.add_argument("--combine-policies", type=_names, default=("semtoken",))


def _add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """Prompt and answer lengths, and how often SemToken's policy rescores the cache."""
    parser.add_argument(
        "--max-answer-tokens", type=integer("--max-answer-tokens", low=2, high=8192), default=64,
        help="gold answers capped at this many reader tokens, 2 to 8192",
    )  # fmt: skip
    parser.add_argument(
        "--max-prompt-tokens", type=integer("--max-prompt-tokens", high=MAX_TOKENS),
        default=None, help=f"cut contexts so the prompt fits, 1 to {MAX_TOKENS:,} tokens",
    )  # fmt: skip
    parser.add_argument(
        "--recompute-every", type=integer("--recompute-every", high=MAX_STEPS), default=None,
        help=f"SemToken rescoring every this many steps, 1 to {MAX_STEPS:,}",
    )  # fmt: skip
    parser.add_argument(
        "--query-window", type=integer("--query-window", high=MAX_STEPS), default=None,
        help=f"SemToken's prompt queries at prefill, 1 to {MAX_STEPS:,}",
    )  # fmt: skip


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The reader, the seed, the threads, and the decode-speed run instead of the evaluation."""
    parser.add_argument("--reader", default="smollm2")
    parser.add_argument("--reader-dtype", default="auto")
    parser.add_argument(
        "--seed", type=integer("--seed", low=0, high=2**32 - 1), default=0,
        help="seed of the per-example method order, 0 to 2^32-1",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=integer("--threads", high=4096), default=None,
        help="torch CPU threads, 1 to 4096",
    )  # fmt: skip
    parser.add_argument(
        "--speed-steps",
        type=integer("--speed-steps", high=MAX_STEPS),
        default=None,
        help="instead of the LL evaluation: decode speed in lockstep over this many steps, "
        f"1 to {MAX_STEPS:,} (--max-prompt-tokens defaults to 4096; writes speed.json / "
        "speed.md)",
    )


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the evaluation, or the speed run, and print the report."""
    if not args.report_only:  # refused before torch and the reader load
        _check_options(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.report_only:
        return _rewrite_report(args)
    if args.speed_steps:
        return _run_speed(args)
    return _run_eval(args)


def _check_options(args: argparse.Namespace) -> None:
    """Refuse a run without data, a bad ``--out``, or options a ``--speed-steps`` run ignores.

    Raises:
        InvalidInputError: in any of these cases (one line, before anything loads).
    """
    from semtoken_rag.errors import InvalidInputError

    if not args.data:
        raise InvalidInputError("--data is required (unless --report-only)")
    cli_args.check_output(args.out, "--out", folder=True)
    speed_ignores = {"--per-doc": args.per_doc, "--recompute-every": args.recompute_every,
                     "--query-window": args.query_window}  # fmt: skip
    ignored = [flag for flag, value in speed_ignores.items() if value is not None]
    if args.speed_steps and ignored:
        raise InvalidInputError(f"{', '.join(ignored)} do not apply to --speed-steps runs")


def _rewrite_report(args: argparse.Namespace) -> int:
    """``--report-only``: the report of ``--out`` rebuilt from its records, and printed."""
    from semtoken_lab.eval.kv_eval import read_records
    from semtoken_lab.eval.kv_report import render_markdown, summarize, write_report

    records = read_records(args.out)
    write_report(args.out, records)
    print(render_markdown(*summarize(records)))
    return 0


def _run_speed(args: argparse.Namespace) -> int:
    """``--speed-steps``: decode speed of every method in lockstep; prints ``speed.md``."""
    from semtoken_lab.eval.kv_speed import SpeedConfig, run_kv_speed

    speed = SpeedConfig(
        data=tuple(args.data),
        out=args.out,
        limit=args.limit,
        max_prompt_tokens=args.max_prompt_tokens or 4096,
        steps=args.speed_steps,
        budgets=args.budgets,
        policies=args.policies,
        seed=args.seed,
    )
    print((run_kv_speed(speed) / "speed.md").read_text(encoding="utf-8"))
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    """The log-likelihood evaluation: one progress line per example, then the report."""
    from semtoken_lab.eval.kv_eval import run_kv_eval

    out = run_kv_eval(_eval_config(args), on_example=_print_progress)
    print((out / "report.md").read_text(encoding="utf-8"))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    nan = [r["method"] for r in summary["rows"] if math.isnan(r["retained"])]
    if nan:
        print(f"note: retained LL undefined (full == closed-book) for {nan}")
    return 0


def _eval_config(args: argparse.Namespace) -> KVEvalConfig:
    """The :class:`~semtoken_lab.eval.kv_eval.KVEvalConfig` the options describe.

    SemToken's policy options are passed only when given, so the policy keeps its defaults.
    """
    from semtoken_lab.eval.kv_eval import KVEvalConfig

    options = {
        k: v
        for k, v in (
            ("recompute_every", args.recompute_every),
            ("query_window", args.query_window),
        )
        if v is not None
    }
    return KVEvalConfig(
        data=tuple(args.data),
        out=args.out,
        limit=args.limit,
        per_doc=args.per_doc,
        budgets=args.budgets,
        policies=args.policies,
        prompt_ratios=args.prompt_ratios,
        combine=args.combine,
        combine_policies=args.combine_policies,
        max_answer_tokens=args.max_answer_tokens,
        max_prompt_tokens=args.max_prompt_tokens,
        kv_options=options,
        reader=args.reader,
        reader_dtype=args.reader_dtype,
        seed=args.seed,
    )


def _print_progress(done: int, total: int, ex_id: str, seconds: float) -> None:
    """One line per finished example, with a naive estimate of the time left."""
    eta = seconds / done * (total - done)
    print(f"[{done}/{total}] {ex_id}  {seconds:.0f} s, ~{eta:.0f} s left", flush=True)
