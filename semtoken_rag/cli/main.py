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
import traceback
from typing import NoReturn

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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump): every CLI failure is one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="semtoken-rag", description="Semantic compression of retrieved context for RAG."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    wanted = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module, missing = None, None
        if name == wanted:
            try:
                module = optional.require(module_name, f"`semtoken-rag {name}`")
            except SemTokenError as exc:
                missing = f"error: {exc}"
        # Without its module a command has no options: its own (``--help`` too) are left to
        # main, which answers with the install hint instead of "unrecognized arguments".
        p = sub.add_parser(name, help=help_text, description=help_text, add_help=not missing)
        if missing:
            p.set_defaults(_missing=missing)
        elif module is not None:
            module.register(p)
            p.set_defaults(_run=module.run)
    return parser


def _safe_streams() -> None:
    """Never crash on printing: text may hold lone surrogates (from undecodable input)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def _one_line(exc: BaseException, verbose: bool = False) -> str:
    """One line describing ``exc``: a typed error's message (its lines joined); for any other
    exception its class and the first non-blank line of its message only (a Ray or
    child-process error carries a whole traceback in its message), and the ``-v`` hint."""
    if isinstance(exc, SemTokenError):
        return " ".join(str(exc).split()) or type(exc).__name__
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if verbose else f"{text} (-v for the traceback)"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure is one line on stderr and a non-zero exit (``-v`` adds the
    traceback)."""
    _safe_streams()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "_missing", None):
        print(args._missing, file=sys.stderr)
        return 2
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {_one_line(exc, args.verbose)}", file=sys.stderr)
        return 2 if isinstance(exc, SemTokenError) else 1


if __name__ == "__main__":
    sys.exit(main())
