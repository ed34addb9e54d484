"""``semtoken-rag``: one entry point, subcommands in a registry of modules.

Each subcommand module exposes ``register(parser)`` and ``run(args) -> int`` and is imported only
when used.  The research commands (``ask``, ``eval``, ``bench``) live in ``semtoken-rag-lab``;
without it they answer with a one-line install hint."""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
import traceback
from typing import NoReturn

from semtoken_rag import optional
from semtoken_rag.errors import NonFiniteFingerprintsError, SemTokenError

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


#: The exit statuses, shown by ``--help`` (scripts branch on them).
EXIT_STATUS = (
    "exit status: 0 done (also when the reader of the output, such as `head`, stops early); "
    "1 failed (a document that could not be encoded, the encoder's NaN, a damaged store, an "
    "unexpected error, the reader of the diagnostics gone mid-run); 2 bad usage or input (one "
    "`error:` line); "
    "130 interrupted (Ctrl-C)"
)


#: Typed errors that are failures (status 1), not bad usage or input: the encoder's own answer.
_FAILURES = (NonFiniteFingerprintsError,)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump): every CLI failure is one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="semtoken-rag",
        description="Semantic compression of retrieved context for RAG.",
        epilog=EXIT_STATUS,
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
        # Without its module a command has no options (nor --help): main gives the install hint.
        p = sub.add_parser(name, help=help_text, description=help_text, add_help=not missing)
        if missing:
            p.set_defaults(_missing=missing)
        elif module is not None:
            module.register(p)
            p.set_defaults(_run=module.run)
    return parser


def _safe_streams() -> None:
    """Never crash on printing, and lose nothing: a character the stream's encoding lacks
    (``LC_ALL=C``) or a lone surrogate is written as a backslash escape (``caf\\xe9``)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _reader_gone(stream: object) -> bool:
    """Whether ``stream`` is a pipe whose reader has gone (``poll`` reports an error or a
    hang-up on its descriptor); ``False`` where that cannot be told (no descriptor, no poll)."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)  # type: ignore[attr-defined]
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):
        return False
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in events)


def _discard(stream: object) -> None:
    """Point ``stream``'s descriptor at the null device (the ``signal`` docs' "Note on SIGPIPE"),
    so what is still buffered is dropped at exit instead of failing there (status 120)."""
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def _closed_pipe() -> int:
    """The status once a write met a closed pipe: 0 when the output's reader left (``| head`` took
    what it wanted); 1, unsaid, when stderr's reader left (the command stopped midway)."""
    err_gone = _reader_gone(sys.stderr)
    if err_gone:
        _discard(sys.stderr)
    if not err_gone or _reader_gone(sys.stdout):
        _discard(sys.stdout)
    return 1 if err_gone else 0


def _one_line(exc: BaseException, verbose: bool = False) -> str:
    """One line describing ``exc``: a typed error's message; for any other, its class, its first
    message line (a Ray error's message holds a whole traceback) and the ``-v`` hint."""
    if isinstance(exc, SemTokenError):
        return " ".join(str(exc).split()) or type(exc).__name__
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if verbose else f"{text} (-v for the traceback)"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: every failure is one line on stderr and a non-zero exit (:data:`EXIT_STATUS`;
    ``-v`` adds the traceback); Ctrl-C and a closed pipe are handled around parsing too."""
    _safe_streams()
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    """Parse ``argv`` and run its command; the output is flushed here, not at exit, where a gone
    reader or a full disk would be status 120 after success."""
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
        code = int(args._run(args) or 0)
        if sys.stdout is not None:
            sys.stdout.flush()
        return code
    except BrokenPipeError:
        raise
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {_one_line(exc, args.verbose)}", file=sys.stderr)
        _drop_unwritable_output()
        return 1 if isinstance(exc, _FAILURES) or not isinstance(exc, SemTokenError) else 2


def _drop_unwritable_output() -> None:
    """After a failure, flush the output or, where it cannot be written (a full disk), drop
    what it holds: the failure is said once, not again at exit."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        _discard(sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
