"""``semtoken-rag compress``: compress files (one chunk each) or stdin."""

from __future__ import annotations

import argparse
import codecs
import json
import sys
from pathlib import Path
from typing import Any, get_args

from semtoken_rag.cli.args import MAX_COUNT, budget, ratio_or_auto
from semtoken_rag.cli.files import read_text_file
from semtoken_rag.compressor import Compressor
from semtoken_rag.config import DType, ForceKeepPreset, SemTokenConfig
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.results import CompressionResult


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="text files (one chunk each); '-' or none: stdin")
    parser.add_argument("--query", "-q", default=None, help="the question to condition on")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--ratio", type=ratio_or_auto, default=None,
        help="fraction of tokens to keep, in (0, 1], or 'auto' (chosen per call: the smallest "
        "budget whose kept text covers the question, between 0.1 and 0.5)",
    )  # fmt: skip
    group.add_argument(
        "--budget", type=budget, default=None, help=f"absolute token budget, 1 to {MAX_COUNT:,}"
    )
    parser.add_argument("--encoder", default=None, help="encoder id or path")
    parser.add_argument("--device", default=None, help="encoder device: auto, cpu, cuda, cuda:N")
    parser.add_argument(
        "--encoder-dtype", choices=get_args(DType), default=None,
        help="encoder dtype (default auto: float16 on CUDA, float32 on CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--store", type=Path, default=None,
        help="fingerprint store written by `semtoken-rag ingest` (read-only: chunks found in "
        "its documents need no encoder pass)",
    )  # fmt: skip
    parser.add_argument("--count-tokenizer", default=None, help="tokenizer the budget counts in")
    parser.add_argument(
        "--force-keep", action="append", default=[], help="regex whose matches are kept"
    )
    parser.add_argument(
        "--preset-keep", action="append", default=[], choices=get_args(ForceKeepPreset),
        help="named force-keep rule",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")


#: The file name that means standard input (the Unix convention: ``cat a | ... compress -``).
STDIN = "-"


def _read_stdin() -> str:
    """Stdin's bytes, decoded leniently (U+FFFD), unlike a named file's (:func:`decode_text`).

    Raises:
        InvalidInputError: stdin is closed (``<&-``).
    """
    if sys.stdin is None:
        raise InvalidInputError("stdin is closed: name the files to compress, or pipe text in")
    if sys.stdin.isatty():  # else a bare `compress` in a terminal waits without a word
        print("reading text from the terminal until end of input (Ctrl-D)", file=sys.stderr)
    return sys.stdin.buffer.read().decode("utf-8", errors="replace")


def _read_inputs(files: list[str]) -> list[str]:
    """The texts to compress: the files, ``-`` standing for stdin, or stdin when none is named.

    Raises:
        InvalidInputError: a file cannot be read, ``-`` is named twice, or nothing holds text.
    """
    if files.count(STDIN) > 1:
        raise InvalidInputError("'-' (stdin) is named more than once: stdin can be read once")
    if not files:
        texts = [_read_stdin()]
    else:
        texts = [_read_stdin() if f == STDIN else read_text_file(Path(f)) for f in files]
    if not any(t.strip() for t in texts):
        where = "stdin holds" if not files else "the files hold"
        raise InvalidInputError(f"nothing to compress: {where} no text")
    return texts


def _source(args: argparse.Namespace, i: int) -> str:
    """The ``--json`` name of chunk ``i``: its file, or ``<stdin>``."""
    return args.files[i] if args.files and args.files[i] != STDIN else "<stdin>"


def _compress(config: SemTokenConfig, texts: list[str], args: argparse.Namespace) -> Any:
    """Compress with the store given by ``--store`` (read-only) or the in-memory cache."""
    if args.store is None:
        return Compressor(config).compress(texts, args.query, ratio=args.ratio, budget=args.budget)
    from semtoken_rag.store import FingerprintStore

    with FingerprintStore(args.store, read_only=True) as store:
        comp = Compressor(config, store=store)
        return comp.compress(texts, args.query, ratio=args.ratio, budget=args.budget)


#: Fields of the ``--json`` output, in its key order (after ``query``).
RESULT_FIELDS = ("original_tokens", "kept_tokens", "ratio", "budget_tokens", "overshoot_tokens",
                 "dedup_saved_tokens", "encoder_calls")  # fmt: skip
CHUNK_FIELDS = ("original_tokens", "kept_tokens", "ratio")


def _payload(result: CompressionResult, args: argparse.Namespace) -> dict[str, Any]:
    """The ``--json`` output."""
    why = result.budget_choice
    return {
        "query": args.query,
        **{name: getattr(result, name) for name in RESULT_FIELDS},
        "budget_choice": why.as_dict() if why else None,
        "timings_ms": {k: getattr(result.timings, f"{k}_ms") for k in ("encode", "core", "total")},
        "chunks": [
            {"source": _source(args, i), "text": c.text,
             "offsets": [list(o) for o in c.offsets], **{n: getattr(c, n) for n in CHUNK_FIELDS}}
            for i, c in enumerate(result.chunks)
        ],
    }  # fmt: skip


def _json_text(payload: dict[str, Any]) -> str:
    """The ``--json`` document: UTF-8 where stdout is UTF-8, else ASCII with ``\\u`` escapes (also
    for a lone surrogate), so the stream's encoding never silently changes a character."""
    text = json.dumps(payload, ensure_ascii=False, indent=2)
    try:
        if codecs.lookup(getattr(sys.stdout, "encoding", None) or "utf-8").name == "utf-8":
            text.encode("utf-8")
            return text
    except (LookupError, UnicodeEncodeError):
        pass
    return json.dumps(payload, indent=2)


def run(args: argparse.Namespace) -> int:
    """Compress the inputs; print the kept text (a summary on stderr) or the JSON document.

    Raises:
        InvalidInputError: stdout is closed (``>&-``), checked before anything is read or loaded.
    """
    if sys.stdout is None:
        raise InvalidInputError("stdout is closed: the compressed text has nowhere to go")
    given = {"encoder_model": args.encoder, "device": args.device, "encoder_dtype":
             args.encoder_dtype, "count_tokenizer": args.count_tokenizer}  # fmt: skip
    config = SemTokenConfig(
        force_keep=tuple(args.force_keep),
        force_keep_presets=tuple(args.preset_keep),
        progress=True,
        **{k: v for k, v in given.items() if v is not None},  # '' is refused, not ignored
    )
    texts = _read_inputs(args.files)
    result = _compress(config, texts, args)
    if args.json:
        sys.stdout.write(_json_text(_payload(result, args)) + "\n")
        return 0
    for c in result.chunks:
        print(c.text)
        print()
    why = result.budget_choice
    auto = f", auto budget {why.tokens} ({why.reason})" if why is not None else ""
    print(
        f"# kept {result.kept_tokens}/{result.original_tokens} tokens "
        f"(ratio {result.ratio:.3f}{auto}, {result.timings.total_ms:.0f} ms)",
        file=sys.stderr,
    )
    return 0
