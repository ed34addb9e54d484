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
from typing import TYPE_CHECKING, Any

from semtoken_rag.errors import InvalidInputError

if TYPE_CHECKING:
    from semtoken_rag.config import SemTokenConfig
    from semtoken_rag.store import FingerprintStore

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
    parser.add_argument(
        "--codec",
        default=None,
        help="fingerprint codec (default: the store's own, pq64 for a new store; see "
        "docs/store.md); another codec than an existing store's is an error (`semtoken-rag "
        "store migrate --codec` re-encodes)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _register_ray(parser)


def _register_ray(parser: argparse.ArgumentParser) -> None:
    """Options of distributed ingestion (``--ray``; see docs/ray.md), and the two encoder
    settings a GPU run needs (they apply without ``--ray`` too)."""
    parser.add_argument(
        "--window-batch",
        type=int,
        default=None,
        help="encoder windows per forward pass (default 32; larger on GPUs)",
    )
    parser.add_argument(
        "--encoder-dtype",
        choices=("auto", "float32", "float16", "bfloat16"),
        default=None,
        help="encoder dtype (default auto: float16 on CUDA, float32 on CPU)",
    )
    from semtoken_rag.distributed.options import add_ray_options

    group = add_ray_options(
        parser,
        title="distributed ingestion on Ray (pip install 'semtoken-rag[ray]')",
        what="encode",
        actors_default=1,
    )
    group.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="a chunk that fails to encode: stop (raise) or report it and go on (skip)",
    )


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

    on_ray = getattr(args, "ray", None) is not None
    if on_ray:  # fail before reading anything when the extra is missing
        from semtoken_rag.distributed.cluster import ray_module

        ray_module()
    texts: list[str] = []
    ids: list[str] = []
    files = list(iter_files(list(args.paths)))
    for f in files:
        chunks = read_chunks(f, args.chunk_size, args.chunk_overlap, args.text_field)
        texts.extend(chunks)
        ids.extend(f"{f}#{i}" for i in range(len(chunks)))
    config = SemTokenConfig(**_encoder_options(args))
    n_failed, failed = 0, ""
    with FingerprintStore(args.store, max_bytes=args.max_bytes, codec=args.codec) as store:
        if on_ray:
            n_new, n_failed, failed = _ingest_on_ray(args, texts, ids, config, store)
        else:
            n_new = store.add_texts(
                texts, Compressor(config), batch_size=args.batch_size, progress=not args.no_progress
            )
        stats = store.stats()
    print(
        f"{len(files)} files, {len(texts)} chunks: {n_new} encoded, "
        f"{len(texts) - n_new - n_failed} already stored{failed}; store {args.store}: "
        f"{stats.entries} entries, {stats.bytes_on_disk / 2**20:.1f} MiB on disk"
    )
    return 0


def _encoder_options(args: argparse.Namespace) -> dict[str, Any]:
    """SemTokenConfig fields set on the command line."""
    options: dict[str, Any] = {
        "encoder_model": args.encoder,
        "batch_size": getattr(args, "window_batch", None),
        "encoder_dtype": getattr(args, "encoder_dtype", None),
    }
    return {k: v for k, v in options.items() if v is not None}


def _ingest_on_ray(
    args: argparse.Namespace,
    texts: list[str],
    ids: list[str],
    config: SemTokenConfig,
    store: FingerprintStore,
) -> tuple[int, int, str]:
    """``--ray``: encode on Ray actors, commit here; ``(n_new, n_failed, failure note)``."""
    from semtoken_rag.distributed import ray_ingest

    report = ray_ingest(
        texts,
        store,
        config=config,
        ids=ids,
        actors=args.actors,
        gpus_per_actor=args.gpus_per_actor,
        cpus_per_actor=args.cpus_per_actor,
        batch_size=args.batch_size,
        on_error=args.on_error,
        address=args.ray or None,
        connect_timeout=args.connect_timeout,
        progress=not args.no_progress,
    )
    note = ""
    if report.failed:
        first = report.failed[0]
        note = f", {len(report.failed)} failed (first {first.id}: {first.error})"
    print(
        f"ray: {report.actors} actors, {report.batches} batches in {report.seconds:.1f} s "
        f"({report.cache_id})"
    )
    return report.encoded, len(report.failed), note
