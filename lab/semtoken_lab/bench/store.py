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

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.cases import DEFAULT_DATA, Doc
from semtoken_lab.bench.device import engine_config

#: Training corpus of trained codecs, relative to the data root (disjoint from the eval sets).
TRAIN_CORPUS = "needle_haystack/essays.jsonl"


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


def training_chunks(root: Path | None = None) -> list[str]:
    """Chunks (120 words, overlap 20) of the codec's training corpus, in file order.

    Raises:
        InvalidInputError: the corpus is missing.
    """
    from semtoken_rag.errors import InvalidInputError
    from semtoken_rag.ingestion.chunking import chunk_words

    path = (root or DEFAULT_DATA) / TRAIN_CORPUS
    if not path.is_file():
        raise InvalidInputError(f"the codec training corpus {path} is missing")
    chunks: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                chunks.extend(chunk_words(json.loads(line)["text"], 120, 20))
    return chunks


def train_store(store: Any, encoder: Any, chunks: Sequence[str], batch: int = 64) -> int:
    """Ingest ``chunks`` (each a short document) into ``store`` until its codec is trained;
    returns chunks ingested.

    Raises:
        InvalidInputError: the chunks hold too few words to train the codec.
    """
    from semtoken_rag.errors import InvalidInputError
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, ingest

    runner = LocalRunner(encoder)
    options = IngestOptions(batch_size=batch, progress=False)
    done = 0
    while not store.stats().trained and done < len(chunks):
        ingest(list(chunks[done : done + batch]), store, runner, options)
        done += batch
    if not store.stats().trained:
        raise InvalidInputError(f"too few training words for codec {store.codec.name!r}")
    return min(done, len(chunks))


def _decoded_cache(texts: Sequence[str], fps: Sequence[Any], encoder_id: str) -> Any:
    """An in-memory cache holding the original float32 fingerprints of ``texts``."""
    from semtoken_rag.cache import MemoryFingerprintCache

    cache = MemoryFingerprintCache(max_bytes=2**50)  # the whole workload, never evicted
    cache.put(texts, fps, encoder_id)
    return cache


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
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.ingestion.chunking import chunk_words
    from semtoken_rag.store import get_codec

    rows = docs[:contexts]
    work = [(chunk_words(d.context, chunk_size, chunk_overlap), d.question) for d in rows]
    texts = list(dict.fromkeys(c for chunks, _ in work for c in chunks))
    engine = engine_config(device, encoder_model)
    base = Compressor(SemTokenConfig(**engine))
    enc: Any = base.encoder
    t = time.perf_counter()
    fps = enc.encode_texts(texts)
    encode_s = time.perf_counter() - t
    tokens = sum(base.count_tokens(x) for x in texts)
    need = max((get_codec(c).train_min for c in codecs), default=0)
    train_texts = _enough(training_chunks(data_root), need)
    train_counts = [base.count_tokens(x) for x in train_texts]

    # Reference outputs from the original float32 fingerprints, and the cold cost.
    ref_comp = Compressor(
        SemTokenConfig(**engine), encoder=enc, store=_decoded_cache(texts, fps, enc.cache_id)
    )
    reference = {
        r: [ref_comp.compress(c, q, ratio=r).joined("\n\n") for c, q in work] for r in (0.5, 0.25)
    }
    t = time.perf_counter()
    for chunks, q in work:
        Compressor(SemTokenConfig(**engine, cache_embeddings=False), encoder=enc).compress(
            chunks, q, ratio=0.5
        )
    cold_ms = (time.perf_counter() - t) * 1e3 / tokens * 1000

    wl = _Work(enc, engine, texts, fps, work, reference, tokens, train_texts, train_counts, batch)
    measured: list[CodecRow] = []
    for codec in codecs:
        row = _codec_row(codec, wl)
        measured.append(row)
        if on_row is not None:
            on_row(row)
    return StoreReport(
        contexts=len(rows),
        chunks=len(texts),
        tokens=tokens,
        word_vectors=sum(fp.n_words for fp in fps),
        train_chunks=len(train_texts),
        train_tokens=sum(train_counts),
        encode_all_s=encode_s,
        cold_compress_ms_per_1k=cold_ms,
        rows=measured,
        warm_encoder_calls=sum(r.warm_encoder_calls for r in measured),
    )


def _enough(chunks: list[str], words: int) -> list[str]:
    """The first chunks holding at least ``words`` words (plus one batch of margin)."""
    from semtoken_rag.core.segment import find_words

    out, total = [], 0
    for c in chunks:
        out.append(c)
        total += len(find_words(c))
        if total >= words * 1.2:
            break
    return out


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


def _codec_row(codec: str, wl: _Work) -> CodecRow:
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.errors import StoreError
    from semtoken_rag.store import FingerprintStore, get_codec
    from semtoken_rag.tokens import TokenCounter

    enc, engine, texts, fps = wl.enc, wl.engine, wl.texts, wl.fps
    work, reference = wl.work, wl.reference
    tokens, train_texts, train_counts, batch = wl.tokens, wl.train_texts, wl.train_counts, wl.batch

    spec = get_codec(codec)
    with tempfile.TemporaryDirectory(prefix="semtoken-store-bench-") as tmp:
        path = Path(tmp) / "store"
        with FingerprintStore(path, codec=codec) as store:
            t0 = time.perf_counter()
            n_train = train_store(store, enc, train_texts, batch) if spec.trained else 0
            train_s = time.perf_counter() - t0 if spec.trained else 0.0
            t0 = time.perf_counter()
            for lo in range(0, len(texts), batch):  # fingerprints given: codec + write only
                store.put(texts[lo : lo + batch], fps[lo : lo + batch], enc.cache_id)
            insert_s = time.perf_counter() - t0
            vectors = store.stats().words
        on_disk = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        stored_tokens = tokens + sum(train_counts[:n_train])
        with FingerprintStore(path) as store:
            t0 = time.perf_counter()
            found = []
            for lo in range(0, len(texts), 10):  # 10-chunk queries
                found.extend(store.lookup(texts[lo : lo + 10], enc.cache_id))
            lookup_s = time.perf_counter() - t0
            got = [g for g in found if g is not None]
            if len(got) != len(found):
                raise StoreError(f"codec {codec}: a fingerprint just stored was not found")
            cos = np.concatenate(
                [np.sum(g.vectors * fp.vectors, axis=1) for g, fp in zip(got, fps, strict=True)]
            )
            spans_exact = all(
                np.array_equal(g.word_spans, fp.word_spans) for g, fp in zip(got, fps, strict=True)
            )
            comp = Compressor(SemTokenConfig(**engine), encoder=enc, store=store)
            identical = {
                r: float(
                    np.mean(
                        [
                            comp.compress(c, q, ratio=r).joined("\n\n") == ref
                            for (c, q), ref in zip(work, reference[r], strict=True)
                        ]
                    )
                )
                for r in (0.5, 0.25)
            }
            calls = enc.calls
            t0 = time.perf_counter()
            for chunks, q in work:  # a fresh serving process per context: every memo empty
                fresh = Compressor(
                    SemTokenConfig(**engine),
                    encoder=enc,
                    store=store,
                    counter=TokenCounter(enc.tokenizer, name=getattr(enc, "model_id", None)),
                )
                fresh.compress(chunks, q, ratio=0.5)
            warm_ms = (time.perf_counter() - t0) * 1e3 / tokens * 1000
            calls = enc.calls - calls
    return CodecRow(
        codec=codec,
        description=spec.description,
        trained=spec.trained,
        train_s=train_s,
        bytes_on_disk=on_disk,
        bytes_per_1k_tokens=on_disk / stored_tokens * 1000,
        bytes_per_word=on_disk / max(vectors, 1),
        insert_chunks_per_s=len(texts) / insert_s,
        lookup_chunks_per_s=len(texts) / lookup_s,
        lookup_ms_per_1k_tokens=lookup_s * 1e3 / tokens * 1000,
        cos_mean=float(cos.mean()),
        cos_p1=float(np.percentile(cos, 1)),
        spans_exact=spans_exact,
        identical_0_5=identical[0.5],
        identical_0_25=identical[0.25],
        warm_store_only_ms_per_1k=warm_ms,
        warm_encoder_calls=calls,
    )
