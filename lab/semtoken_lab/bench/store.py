"""Fingerprint store benchmark: the codec table, throughput, bytes on disk, cold vs warm.

Real MiniLM fingerprints of ``contexts`` distinct documents cut into ingestion chunks
(:func:`semtoken_rag.ingestion.chunking.chunk_words`, 120 words, overlap 20); the encoder is
loaded beforehand so no timing includes model loading.  Each codec gets its own persistent store,
trained the way a deployment trains it: the first ingested chunks are a corpus disjoint from the
measured documents (the Paul Graham essays of ``shared/data/needle_haystack``), ingested until
the codec has ``train_min`` word vectors; then the measured chunks are inserted (each chunk a
short document of its own, its fingerprints computed beforehand: the insert time is the codec's
encoding and the write) and read back by exact text.

Measured per codec (tokens are **encoder** tokens, MiniLM WordPiece, of every chunk the store
holds, training corpus included):

* bytes on disk per 1k tokens: every file of the store directory after ``close()``;
* insert and lookup throughput; lookup cost per 1k tokens (checksum + decode + renormalise);
* fidelity: cosine of each decoded word vector to the original (mean and 1st percentile);
* downstream: the share of contexts whose compressed text (ratios 0.5 and 0.25) is identical
  to the one computed from the original float32 fingerprints;
* warm (store only): a new ``Compressor`` per context over the store (every memo empty), as
  ``warm (store only)`` in the compression benchmark, in ms per 1k tokens.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.cases import Doc
from semtoken_lab.bench.codec_training import (
    TRAIN_CORPUS,
    chunks_for_words,
    train_store,
    training_chunks,
)
from semtoken_lab.bench.device import engine_config

#: Ratios at which a codec's output is compared to the float32 reference (``identical_*``).
_IDENTICAL_RATIOS = (0.5, 0.25)


@dataclass(frozen=True)
class CodecRow:
    """One codec in the table (sizes in bytes, times in ms unless named otherwise)."""

    codec: str
    description: str
    trained: bool
    train_s: float
    bytes_on_disk: int
    bytes_per_1k_tokens: float
    bytes_per_word: float
    insert_chunks_per_s: float
    lookup_chunks_per_s: float
    lookup_ms_per_1k_tokens: float
    cos_mean: float
    cos_p1: float
    spans_exact: bool
    identical_0_5: float
    identical_0_25: float
    warm_store_only_ms_per_1k: float
    warm_encoder_calls: int


@dataclass(frozen=True)
class StoreReport:
    """Results of :func:`run_store`."""

    contexts: int
    chunks: int
    tokens: int
    word_vectors: int
    train_chunks: int
    train_tokens: int
    encode_all_s: float
    cold_compress_ms_per_1k: float
    rows: list[CodecRow] = field(default_factory=list)
    #: Chunk encodings during the warm (store only) compressions, all codecs (0: all hits).
    warm_encoder_calls: int = 0

    @property
    def warm_speedup(self) -> float:
        """Cold over warm (store only) with the default codec (or the last row)."""
        from semtoken_rag.store import DEFAULT_CODEC

        row = next((r for r in self.rows if r.codec == DEFAULT_CODEC), self.rows[-1])
        return self.cold_compress_ms_per_1k / max(row.warm_store_only_ms_per_1k, 1e-9)

    def markdown(self) -> list[str]:
        """The report's section (a table per codec, and the workload)."""
        lines = [
            "## Fingerprint store",
            "",
            f"{self.contexts} contexts, {self.chunks} chunks, {self.tokens} encoder tokens, "
            f"{self.word_vectors} word vectors measured; each store also holds the codec's "
            f"training corpus ({self.train_chunks} chunks, {self.train_tokens} tokens of "
            f"{TRAIN_CORPUS}). Cold compression: {self.cold_compress_ms_per_1k:.1f} ms per 1k "
            "tokens.",
            "",
            "| codec | B on disk / 1k tok | B / word | insert chunks/s | lookup ms / 1k tok | "
            "cos mean | cos p1 | identical 0.5 | identical 0.25 | warm (store only) ms / 1k | "
            "train s |",
            "|---|" + "---:|" * 10,
        ]
        for r in self.rows:
            lines.append(
                f"| {r.codec} | {r.bytes_per_1k_tokens:,.0f} | {r.bytes_per_word:.1f} | "
                f"{r.insert_chunks_per_s:.0f} | {r.lookup_ms_per_1k_tokens:.3f} | "
                f"{r.cos_mean:.4f} | {r.cos_p1:.4f} | {r.identical_0_5:.2f} | "
                f"{r.identical_0_25:.2f} | {r.warm_store_only_ms_per_1k:.2f} | {r.train_s:.1f} |"
            )
        lines.append("")
        return lines


def run_store(
    docs: list[Doc],
    contexts: int = 50,
    chunk_size: int = 120,
    chunk_overlap: int = 20,
    batch: int = 64,
    device: str | None = None,
    encoder_model: str | None = None,
    codecs: Sequence[str] = ("float32", "pq64"),
    data_root: Path | None = None,
    on_row: Callable[[CodecRow], None] | None = None,
) -> StoreReport:
    """Measure the persistent :class:`~semtoken_rag.store.FingerprintStore` per codec.

    Args:
        docs: Source documents; the first ``contexts`` are used (one question each).
        contexts: Documents compressed through each store.
        chunk_size: Words per ingestion chunk.
        chunk_overlap: Words shared by consecutive chunks.
        batch: Chunks per store write (and per ingestion batch of the training corpus).
        device: Encoder device (``None``: the engine's ``auto``).
        encoder_model: Encoder id or folder (default: the engine's).
        codecs: Codec names, one row each.
        data_root: Root of the shared data (the training corpus).
        on_row: Called with each row as it is measured.
    """
    from semtoken_rag.ingestion.chunking import chunk_words

    work = [
        (chunk_words(d.context, chunk_size, chunk_overlap), d.question) for d in docs[:contexts]
    ]
    engine = engine_config(device, encoder_model)
    wl, encode_s = _encode_work(work, engine, codecs, data_root, batch)
    cold_ms = _cold_ms_per_1k(wl)
    measured: list[CodecRow] = []
    for codec in codecs:
        row = _codec_row(codec, wl)
        measured.append(row)
        if on_row is not None:
            on_row(row)
    return StoreReport(
        contexts=len(work),
        chunks=len(wl.texts),
        tokens=wl.tokens,
        word_vectors=sum(fp.n_words for fp in wl.fps),
        train_chunks=len(wl.train_texts),
        train_tokens=sum(wl.train_counts),
        encode_all_s=encode_s,
        cold_compress_ms_per_1k=cold_ms,
        rows=measured,
        warm_encoder_calls=sum(r.warm_encoder_calls for r in measured),
    )


@dataclass(frozen=True)
class _Work:
    """What every codec row measures on (see :func:`run_store`)."""

    enc: Any
    engine: dict[str, Any]
    texts: list[str]
    fps: list[Any]
    work: list[tuple[list[str], str]]
    reference: dict[float, list[str]]
    tokens: int
    train_texts: list[str]
    train_counts: list[int]
    batch: int


def _encode_work(
    work: list[tuple[list[str], str]],
    engine: dict[str, Any],
    codecs: Sequence[str],
    data_root: Path | None,
    batch: int,
) -> tuple[_Work, float]:
    """Fingerprint every distinct chunk once (timed, the encoder loaded beforehand), count the
    tokens, pick the training chunks and compute the reference outputs."""
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.store import get_codec

    texts = list(dict.fromkeys(c for chunks, _ in work for c in chunks))
    base = Compressor(SemTokenConfig(**engine))
    enc: Any = base.encoder
    t = time.perf_counter()
    fps = enc.encode_texts(texts)
    encode_s = time.perf_counter() - t
    tokens = sum(base.count_tokens(x) for x in texts)
    need = max((get_codec(c).train_min for c in codecs), default=0)
    train_texts = chunks_for_words(training_chunks(data_root), need)
    train_counts = [base.count_tokens(x) for x in train_texts]
    reference = _reference_outputs(engine, enc, texts, fps, work)
    wl = _Work(enc, engine, texts, fps, work, reference, tokens, train_texts, train_counts, batch)
    return wl, encode_s


def _reference_outputs(
    engine: dict[str, Any],
    enc: Any,
    texts: list[str],
    fps: list[Any],
    work: list[tuple[list[str], str]],
) -> dict[float, list[str]]:
    """Each context's compressed text at each ratio from the original float32 fingerprints:
    what a codec's output is compared to."""
    from semtoken_rag import Compressor, SemTokenConfig

    ref_comp = Compressor(
        SemTokenConfig(**engine), encoder=enc, store=_decoded_cache(texts, fps, enc.cache_id)
    )
    return {
        r: [ref_comp.compress(c, q, ratio=r).joined("\n\n") for c, q in work]
        for r in _IDENTICAL_RATIOS
    }


def _decoded_cache(texts: Sequence[str], fps: Sequence[Any], encoder_id: str) -> Any:
    """An in-memory cache holding the original float32 fingerprints of ``texts``."""
    from semtoken_rag.cache import MemoryFingerprintCache

    cache = MemoryFingerprintCache(max_bytes=2**50)  # the whole workload, never evicted
    cache.put(texts, fps, encoder_id)
    return cache


def _cold_ms_per_1k(wl: _Work) -> float:
    """Cold compression (no store, encoder at query time) of every context, ms per 1k tokens."""
    from semtoken_rag import Compressor, SemTokenConfig

    t = time.perf_counter()
    for chunks, q in wl.work:
        Compressor(SemTokenConfig(**wl.engine, cache_embeddings=False), encoder=wl.enc).compress(
            chunks, q, ratio=0.5
        )
    return (time.perf_counter() - t) * 1e3 / wl.tokens * 1000


def _codec_row(codec: str, wl: _Work) -> CodecRow:
    """Fill a store of its own with ``codec``, close it, reopen it and measure the reads."""
    from semtoken_rag.store import FingerprintStore, get_codec

    spec = get_codec(codec)
    with tempfile.TemporaryDirectory(prefix="semtoken-store-bench-") as tmp:
        path = Path(tmp) / "store"
        with FingerprintStore(path, codec=codec) as store:
            t0 = time.perf_counter()
            n_train = train_store(store, wl.enc, wl.train_texts, wl.batch) if spec.trained else 0
            train_s = time.perf_counter() - t0 if spec.trained else 0.0
            insert_s = _insert_s(store, wl)
            vectors = store.stats().words
        on_disk = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        stored_tokens = wl.tokens + sum(wl.train_counts[:n_train])
        with FingerprintStore(path) as store:
            lookup_s, cos, spans_exact = _read_back(store, codec, wl)
            identical = _identical_share(store, wl)
            warm_ms, calls = _warm_store_only(store, wl)
    return CodecRow(
        codec=codec,
        description=spec.description,
        trained=spec.trained,
        train_s=train_s,
        bytes_on_disk=on_disk,
        bytes_per_1k_tokens=on_disk / stored_tokens * 1000,
        bytes_per_word=on_disk / max(vectors, 1),
        insert_chunks_per_s=len(wl.texts) / insert_s,
        lookup_chunks_per_s=len(wl.texts) / lookup_s,
        lookup_ms_per_1k_tokens=lookup_s * 1e3 / wl.tokens * 1000,
        cos_mean=float(cos.mean()),
        cos_p1=float(np.percentile(cos, 1)),
        spans_exact=spans_exact,
        identical_0_5=identical[0.5],
        identical_0_25=identical[0.25],
        warm_store_only_ms_per_1k=warm_ms,
        warm_encoder_calls=calls,
    )


def _insert_s(store: Any, wl: _Work) -> float:
    """Seconds to insert every measured chunk, fingerprints given: the codec and the write."""
    t0 = time.perf_counter()
    for lo in range(0, len(wl.texts), wl.batch):
        store.put(wl.texts[lo : lo + wl.batch], wl.fps[lo : lo + wl.batch], wl.enc.cache_id)
    return time.perf_counter() - t0


def _read_back(store: Any, codec: str, wl: _Work) -> tuple[float, np.ndarray, bool]:
    """Look every chunk up (10-chunk queries): the seconds taken, the cosine of each decoded
    word vector to its original, and whether every word span came back exactly.

    Raises:
        StoreError: a fingerprint just stored was not found.
    """
    from semtoken_rag.errors import StoreError

    t0 = time.perf_counter()
    found = []
    for lo in range(0, len(wl.texts), 10):
        found.extend(store.lookup(wl.texts[lo : lo + 10], wl.enc.cache_id))
    lookup_s = time.perf_counter() - t0
    got = [g for g in found if g is not None]
    if len(got) != len(found):
        raise StoreError(f"codec {codec}: a fingerprint just stored was not found")
    pairs = list(zip(got, wl.fps, strict=True))
    cos = np.concatenate([np.sum(g.vectors * fp.vectors, axis=1) for g, fp in pairs])
    spans_exact = all(np.array_equal(g.word_spans, fp.word_spans) for g, fp in pairs)
    return lookup_s, cos, spans_exact


def _identical_share(store: Any, wl: _Work) -> dict[float, float]:
    """Per ratio, the share of contexts compressed through ``store`` to the reference text."""
    from semtoken_rag import Compressor, SemTokenConfig

    comp = Compressor(SemTokenConfig(**wl.engine), encoder=wl.enc, store=store)
    return {
        r: float(
            np.mean(
                [
                    comp.compress(c, q, ratio=r).joined("\n\n") == ref
                    for (c, q), ref in zip(wl.work, wl.reference[r], strict=True)
                ]
            )
        )
        for r in _IDENTICAL_RATIOS
    }


def _warm_store_only(store: Any, wl: _Work) -> tuple[float, int]:
    """``warm (store only)`` in ms per 1k tokens, and the encoder calls it made (0: all hits)."""
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.tokens import TokenCounter

    calls = wl.enc.calls
    t0 = time.perf_counter()
    for chunks, q in wl.work:  # a fresh serving process per context: every memo empty
        fresh = Compressor(
            SemTokenConfig(**wl.engine),
            encoder=wl.enc,
            store=store,
            counter=TokenCounter(wl.enc.tokenizer, name=getattr(wl.enc, "model_id", None)),
        )
        fresh.compress(chunks, q, ratio=0.5)
    warm_ms = (time.perf_counter() - t0) * 1e3 / wl.tokens * 1000
    return warm_ms, wl.enc.calls - calls
