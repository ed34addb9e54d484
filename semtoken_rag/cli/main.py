"""``semtoken-rag``: one entry point, subcommands in a registry of modules.

Each subcommand module exposes ``register(parser)`` and ``run(args) -> int`` and is imported
only when used, so ``semtoken-rag compress`` never loads the evaluation stack.  The research
commands (``ask``, ``eval``, ``bench``) live in the separate ``semtoken-rag-lab`` distribution;
without it they answer with the one-line install hint.
"""

from __future__ import annotations

import argparse
import logging
import sys

from semtoken_rag import optional
from semtoken_rag.errors import SemTokenError

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("semtoken_rag.cli.demo", "compress a bundled sample and draw its density heatmap"),
    "compress": ("semtoken_rag.cli.compress", "compress files or stdin"),
    "ask": ("semtoken_lab.cli.ask", "answer a question over files with the local reader (lab)"),
    "eval": ("semtoken_lab.cli.eval", "run the evaluation harness (lab)"),
    "ingest": ("semtoken_rag.cli.ingest", "precompute fingerprints into a store"),
    "store": ("semtoken_rag.cli.store", "inspect a fingerprint store"),
    "bench": ("semtoken_lab.cli.bench", "run the benchmarks (lab)"),
    "kv-eval": ("semtoken_lab.cli.kv", "evaluate KV-cache budgets during decoding (lab)"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semtoken-rag", description="Semantic compression of retrieved context for RAG."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != wanted:
            continue
        try:
            module = optional.require(module_name, f"`semtoken-rag {name}`")
        except SemTokenError as exc:
            p.set_defaults(_missing=f"error: {exc}")
            continue
        module.register(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "_missing", None):
        print(args._missing, file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except SemTokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
