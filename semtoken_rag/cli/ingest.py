"""``semtoken-rag ingest PATH... --store DIR``: precompute chunk fingerprints into a store.

Text and markdown files are cut into word windows (``--chunk-size``/``--chunk-overlap``);
JSONL files are taken as pre-chunked, one chunk per record from ``--text-field`` (re-chunked
only when ``--chunk-size`` is given).  Use the same chunking as your retriever: the store is
keyed by the exact chunk text, so only identical chunks hit at query time.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from semtoken_rag.errors import InvalidInputError

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".rst"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
DEFAULT_CHUNK_SIZE = 256
DEFAULT_OVERLAP = 32


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``semtoken-rag ingest``."""
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders (txt, md, jsonl)")
    parser.add_argument("--store", required=True, type=Path, help="store directory")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help=f"words per chunk for text files (default {DEFAULT_CHUNK_SIZE}); re-chunks JSONL",
    )
    parser.add_argument(
        "--chunk-overlap", type=int, default=DEFAULT_OVERLAP, help="words shared by chunks"
    )
    parser.add_argument("--text-field", default="text", help="JSONL field holding a pre-made chunk")
    parser.add_argument("--encoder", default=None, help="encoder id or path (default MiniLM)")
    parser.add_argument("--batch-size", type=int, default=64, help="chunks per encoder call")
    parser.add_argument("--max-bytes", type=int, default=None, help="store size limit (LRU)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Files to ingest: the given files, and supported files under given folders (sorted)."""
    for p in paths:
        if p.is_dir():
            yield from sorted(
                f for f in p.rglob("*") if f.suffix.lower() in TEXT_SUFFIXES | JSONL_SUFFIXES
            )
        elif p.is_file():
            yield p
        else:
            raise InvalidInputError(f"{p} does not exist")


def read_chunks(path: Path, chunk_size: int | None, overlap: int, text_field: str) -> list[str]:
    """Chunks of one file (see the module docstring for the rules)."""
    from semtoken_rag.store.chunking import chunk_words

    if path.suffix.lower() in JSONL_SUFFIXES:
        chunks: list[str] = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    text = record[text_field]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise InvalidInputError(
                        f"{path}:{lineno}: expected a JSON object with a {text_field!r} string "
                        f"field ({exc.__class__.__name__}: {exc})"
                    ) from exc
                if not isinstance(text, str):
                    raise InvalidInputError(f"{path}:{lineno}: {text_field!r} is not a string")
                if chunk_size:
                    chunks.extend(chunk_words(text, chunk_size, overlap))
                elif text.strip():
                    chunks.append(text)
        return chunks
    text = path.read_text(encoding="utf-8", errors="replace")
    return chunk_words(text, chunk_size or DEFAULT_CHUNK_SIZE, overlap)


def run(args: argparse.Namespace) -> int:
    """Chunk the inputs, fingerprint the chunks not yet stored, print a summary."""
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.store import FingerprintStore

    texts: list[str] = []
    files = list(iter_files(list(args.paths)))
    for f in files:
        texts.extend(read_chunks(f, args.chunk_size, args.chunk_overlap, args.text_field))
    config = SemTokenConfig(encoder_model=args.encoder) if args.encoder else SemTokenConfig()
    comp = Compressor(config)
    with FingerprintStore(args.store, max_bytes=args.max_bytes) as store:
        n_new = store.add_texts(
            texts, comp, batch_size=args.batch_size, progress=not args.no_progress
        )
        stats = store.stats()
    print(
        f"{len(files)} files, {len(texts)} chunks: {n_new} encoded, "
        f"{len(texts) - n_new} already stored; store {args.store}: {stats.entries} entries, "
        f"{stats.bytes_on_disk / 2**20:.1f} MiB on disk"
    )
    return 0
