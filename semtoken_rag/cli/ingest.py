"""``semtoken-rag ingest PATH... --store DIR``: fingerprint whole documents into a store.

Each text or markdown file is one document, named by its path; each JSONL record is one document
(its ``--text-field``, named by ``--id-field`` or ``FILE:LINE``).  Any chunk a retriever later
cuts from them is served from the store; ``--chunk-size`` first cuts them into word windows."""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

from semtoken_rag.cli.args import check_output, integer
from semtoken_rag.cli.files import open_file, read_text_file
from semtoken_rag.cli.ray_options import add_ray_options, check_ray_options
from semtoken_rag.config import DType, SemTokenConfig
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.ingestion import IngestOptions, SourceDocument
from semtoken_rag.ingestion.chunking import chunk_words
from semtoken_rag.ingestion.run import ON_ERROR
from semtoken_rag.store import FingerprintStore
from semtoken_rag.store.codecs import CODECS

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".rst"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | JSONL_SUFFIXES
#: Largest ``--chunk-size`` / ``--chunk-overlap`` (words).
MAX_WORDS = 10**6
#: Largest ``--batch-size`` / ``--window-batch``.
MAX_BATCH = 65536


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semtoken-rag ingest``."""
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        help="files or folders (txt, md, rst, jsonl; a file named here of another suffix is "
        "read as UTF-8 text)",
    )
    parser.add_argument("--store", required=True, type=Path, help="store directory")
    parser.add_argument("--text-field", default="text", help="JSONL field holding the text")
    parser.add_argument("--id-field", default=None, help="JSONL field naming each document")
    parser.add_argument(
        "--chunk-size", type=integer("--chunk-size", high=MAX_WORDS), default=None,
        help=f"cut documents into windows of this many words first, 1 to {MAX_WORDS:,} "
        "(default: whole documents)",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-overlap", type=integer("--chunk-overlap", low=0, high=MAX_WORDS), default=0,
        help="words shared by windows, 0 to --chunk-size - 1 (needs --chunk-size)",
    )  # fmt: skip
    parser.add_argument("--encoder", default=None, help="encoder id or path (default MiniLM)")
    parser.add_argument("--device", default=None, help="encoder device: auto, cpu, cuda, cuda:N")
    parser.add_argument(
        "--batch-size", type=integer("--batch-size", high=MAX_BATCH), default=256,
        help=f"documents per encoder call and per store transaction, 1 to {MAX_BATCH:,}",
    )  # fmt: skip
    parser.add_argument(
        "--max-bytes", type=integer("--max-bytes", high=2**62), default=None,
        help="store size limit in bytes, 1 to 2^62",
    )  # fmt: skip
    parser.add_argument(
        "--codec", choices=sorted(CODECS), default=None,
        help="codec of a NEW store (default pq64); another than an existing store's is refused",
    )  # fmt: skip
    parser.add_argument(
        "--on-error", choices=ON_ERROR, default="raise",
        help="a document that fails to encode: stop (raise) or report it and go on (skip)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--window-batch", type=integer("--window-batch", high=MAX_BATCH), default=None,
        help=f"encoder windows per forward pass, 1 to {MAX_BATCH:,} (default 32; larger on "
        "GPUs)",
    )  # fmt: skip
    parser.add_argument(
        "--encoder-dtype", choices=get_args(DType), default=None,
        help="encoder dtype (default auto: float16 on CUDA, float32 on CPU)",
    )  # fmt: skip
    add_ray_options(
        parser, title="distributed ingestion on Ray (pip install 'semtoken-rag[ray]')",
        what="encode", actors_default=1,
    )  # fmt: skip


def check_options(args: argparse.Namespace) -> None:
    """Refuse option combinations that would be ignored or fail later (before any reading).

    Raises:
        InvalidInputError: ``--chunk-overlap`` without ``--chunk-size`` or not below it, an actor
            option without ``--ray``, or a ``--store`` that is (under) a file.
    """
    check_output(args.store, "--store", folder=True)
    if args.chunk_overlap and args.chunk_size is None:
        raise InvalidInputError(
            f"--chunk-overlap {args.chunk_overlap} needs --chunk-size (windows to overlap)"
        )
    if args.chunk_size is not None and args.chunk_overlap >= args.chunk_size:
        raise InvalidInputError(
            f"--chunk-overlap must be below --chunk-size {args.chunk_size}, got "
            f"{args.chunk_overlap}"
        )
    check_ray_options(args)


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Files to ingest: the given files, and supported files under given folders (sorted).

    Raises:
        InvalidInputError: a path that is missing, not a file or folder, or cannot be looked at.
    """
    for p in paths:
        try:
            if p.is_dir():
                yield from folder_files(p)
            elif p.is_file():
                yield p
            elif p.is_symlink():
                raise InvalidInputError(f"{p} is a broken or looping symbolic link")
            elif p.exists():
                raise InvalidInputError(f"{p} is not a regular file or folder (a pipe or a device)")
            elif str(p) == "-":  # `compress -` reads stdin; ingest names its documents by file
                raise InvalidInputError("ingest reads files and folders, not stdin ('-')")
            else:
                raise InvalidInputError(f"{p} does not exist")
        except OSError as exc:
            raise InvalidInputError(f"cannot read {p}: {exc.strerror or exc}") from exc


def folder_files(folder: Path) -> list[Path]:
    """Supported files under ``folder``, sorted; links to folders are not followed (a link loop
    ends), and an unreadable sub-folder or entry is skipped with a warning, not silently.

    Raises:
        InvalidInputError: ``folder`` itself cannot be listed.
    """
    try:
        os.scandir(folder).close()
    except OSError as exc:
        raise InvalidInputError(f"cannot read folder {folder}: {exc.strerror or exc}") from exc

    def skip(exc: OSError) -> None:
        logger.warning("skipped: cannot read %s: %s", exc.filename, exc.strerror or exc)

    found = []
    for root, _, names in os.walk(folder, onerror=skip):
        for f in (Path(root, n) for n in names if Path(n).suffix.lower() in SUPPORTED_SUFFIXES):
            try:
                if f.is_file():
                    found.append(f)
            except OSError as exc:
                skip(exc)
    return sorted(found)


def _jsonl_documents(path: Path, text_field: str, id_field: str | None) -> Iterator[Any]:
    with open_file(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.decode("utf-8", errors="replace")
            if lineno == 1:  # a byte-order mark (files saved by Windows editors) is not JSON
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record[text_field]
            except (ValueError, KeyError, TypeError, RecursionError) as exc:  # too deep, too long
                raise InvalidInputError(
                    f"{path}:{lineno}: expected a JSON object with a {text_field!r} string "
                    f"field ({exc.__class__.__name__}: {exc})"
                ) from exc
            if not isinstance(text, str):
                raise InvalidInputError(f"{path}:{lineno}: {text_field!r} is not a string")
            if id_field and id_field not in record:
                raise InvalidInputError(f"{path}:{lineno}: no {id_field!r} field (--id-field)")
            if id_field and record[id_field] is None:  # str(None): every null id one name
                raise InvalidInputError(f"{path}:{lineno}: {id_field!r} is null (--id-field)")
            yield SourceDocument(text, (str(record[id_field]) if id_field else f"{path}:{lineno}",))


def read_documents(path: Path, args: argparse.Namespace, found: bool = False) -> list[Any]:
    """Documents of one file (rules: the module docstring); a text file ``found`` in a folder that
    cannot be read as text is skipped with a warning (named on the command line, it is refused)."""
    if path.suffix.lower() in JSONL_SUFFIXES:
        docs = list(_jsonl_documents(path, args.text_field, args.id_field))
    else:
        try:
            text = read_text_file(path)
        except InvalidInputError as exc:
            if not found:
                raise
            logger.warning("skipped: %s", exc)
            return []
        docs = [SourceDocument(text, tuple(dict.fromkeys((str(path), str(path.resolve())))))]
    if not args.chunk_size:
        return docs
    return [
        SourceDocument(piece, d.names)
        for d in docs
        for piece in chunk_words(d.text, args.chunk_size, args.chunk_overlap)
    ]


def run(args: argparse.Namespace) -> int:
    """Read the documents, fingerprint those not yet stored, print a summary."""
    check_options(args)
    files = list(dict.fromkeys(iter_files(list(args.paths))))  # a file named twice counts once
    named = set(args.paths)
    docs = [d for f in files for d in read_documents(f, args, found=f not in named)]
    if not any(d.text.strip() for d in docs):
        raise InvalidInputError(f"no text to ingest in {', '.join(map(str, args.paths))}")
    given = {"encoder_model": args.encoder, "device": args.device,
             "batch_size": args.window_batch, "encoder_dtype": args.encoder_dtype}  # fmt: skip
    config = SemTokenConfig(**{k: v for k, v in given.items() if v is not None})
    options = IngestOptions(
        batch_size=args.batch_size, on_error=args.on_error, progress=not args.no_progress
    )
    report = (_on_ray if args.ray is not None else _here)(args, docs, config, options)
    with FingerprintStore(args.store, read_only=True) as store:  # the log is merged by now
        stats = store.stats()
    failed = ""
    if report.failed:
        first = report.failed[0]
        failed = f", {len(report.failed)} failed (first {first.id}: {first.error})"
    print(
        f"{len(files)} files, {report.documents} documents ({report.words} words encoded): "
        f"{report.encoded} encoded, {report.already_stored} already stored{failed}; store "
        f"{args.store}: {stats.documents} documents, {stats.bytes_on_disk / 2**20:.1f} MiB "
        f"on disk, codec {stats.codec}{'' if stats.trained else ' (not trained yet)'}"
    )
    return 1 if report.failed else 0


def _store(args: argparse.Namespace) -> Any:
    return FingerprintStore(args.store, max_bytes=args.max_bytes, codec=args.codec)


def _here(args: argparse.Namespace, docs: list[Any], config: Any, options: Any) -> Any:
    """Encode in this process (the encoder loads before the store directory is created)."""
    from semtoken_rag import Compressor

    comp = Compressor(config)
    _ = comp.encoder
    with _store(args) as store:
        comp.store = store
        return comp.ingest(docs, options)


def _on_ray(args: argparse.Namespace, docs: list[Any], config: Any, options: Any) -> Any:
    """``--ray``: encode and apply the codec on Ray actors, write here."""
    from semtoken_rag.distributed import RayOptions, ray_ingest

    pool = RayOptions(
        actors=args.actors, gpus_per_actor=args.gpus_per_actor,
        cpus_per_actor=args.cpus_per_actor, address=args.ray or None,
        connect_timeout=args.connect_timeout,
    )  # fmt: skip
    report = ray_ingest(docs, lambda: _store(args), config=config, ray=pool, options=options)
    actors = f"{report.workers} actor{'' if report.workers == 1 else 's'}"
    print(f"ray: {actors}, {report.batches} batches in {report.seconds:.1f} s")
    return report
