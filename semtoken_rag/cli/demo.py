"""``semtoken-rag demo``: compress a bundled sample, show before/after, stats and a heatmap."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from importlib import resources
from itertools import zip_longest
from pathlib import Path

from semtoken_rag import optional
from semtoken_rag.cli.args import check_output, integer, ratio
from semtoken_rag.compressor import Compressor
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.errors import InvalidInputError, MissingDependencyError

#: Widest ``--width`` accepted (columns).
MAX_WIDTH = 1000


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ratio", type=ratio, default=0.5, help="fraction of tokens to keep, in (0, 1]"
    )
    parser.add_argument("--query", default=None, help="question (default: the bundled one)")
    parser.add_argument(
        "--heatmap", default="semtoken-demo-heatmap.png", help="the heatmap's .png file"
    )
    parser.add_argument(
        "--width", type=integer("--width", low=0, high=MAX_WIDTH), default=0,
        help=f"terminal width in columns, 0 to {MAX_WIDTH} (0 = detect)",
    )  # fmt: skip


def _side_by_side(left: str, right: str, width: int) -> str:
    col = max(30, (width - 3) // 2)
    lw = [ln for para in left.split("\n") for ln in (textwrap.wrap(para, col) or [""])]
    rw = [ln for para in right.split("\n") for ln in (textwrap.wrap(para, col) or [""])]
    rows = [f"{'ORIGINAL':<{col}} | COMPRESSED", f"{'-' * col}-+-{'-' * col}"]
    rows += [f"{a:<{col}} | {b}" for a, b in zip_longest(lw, rw, fillvalue="")]
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    check_output(args.heatmap, "--heatmap", folder=False)  # before the model loads
    if Path(args.heatmap).suffix.lower() != ".png":  # matplotlib would refuse it, or add .png
        raise InvalidInputError(f"--heatmap must name a .png file, got {args.heatmap!r}")
    data = resources.files("semtoken_rag") / "data"
    text = (data / "demo_sample.txt").read_text(encoding="utf-8").strip()
    query = args.query or (data / "demo_question.txt").read_text(encoding="utf-8").strip()
    config = SemTokenConfig(compression_ratio=args.ratio)
    comp = Compressor(config)
    result, explanation = comp.explain(text, query)
    width = args.width or shutil.get_terminal_size((140, 40)).columns
    print(f"Question: {query}\n")
    print(_side_by_side(text, result.chunks[0].text, width))
    print()
    print(f"{'tokens (original)':<24}{result.original_tokens:>8}")
    print(f"{'tokens (kept)':<24}{result.kept_tokens:>8}")
    print(f"{'achieved ratio':<24}{result.ratio:>8.3f}")
    print(f"{'near-duplicate tokens':<24}{result.dedup_saved_tokens:>8}")
    print(f"{'kept pieces':<24}{len(result.chunks[0].offsets):>8}")
    print(f"{'compression ms':<24}{result.timings.total_ms:>8.1f}  (includes model load)")
    try:
        heatmap = optional.require("semtoken_lab.viz.heatmap", "the demo's heatmap")
    except MissingDependencyError as exc:
        print(f"heatmap skipped: {exc}")
        return 0
    out = heatmap.density_heatmap(
        text,
        explanation,
        Path(args.heatmap),
        entropy_threshold=config.entropy_threshold,
        title="semtoken-rag demo",
    )
    print(f"heatmap written to {out}")
    return 0
