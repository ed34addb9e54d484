"""Fingerprint store benchmark: insert/lookup throughput, bytes on disk, cold vs warm compression.

Real MiniLM fingerprints of ``contexts`` distinct documents cut into ingestion chunks
(:func:`semtoken_rag.store.chunk_words`); the encoder is loaded beforehand so no timing
includes model loading.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semtoken_lab.bench.cases import Doc
from semtoken_lab.bench.device import engine_config


@dataclass(frozen=True)
class StoreReport:
    """Results of :func:`run_store` (throughputs per second, sizes in bytes)."""

    contexts: int
    chunks: int
    tokens: int
    word_vectors: int
    encode_all_s: float
    disk_insert_chunks_per_s: float
    disk_lookup_chunks_per_s: float
    disk_lookup_tokens_per_s: float
    memory_insert_chunks_per_s: float
    memory_lookup_chunks_per_s: float
    memory_lookup_tokens_per_s: float
    search_index_build_s: float
    payload_bytes: int
    bytes_on_disk_db: int
    bytes_on_disk_with_index: int
    db_bytes_per_1k_tokens: float
    disk_bytes_per_1k_tokens_with_index: float
    cold_compress_s: float
    warm_compress_s: float
    warm_speedup: float
    cold_encoder_calls: int
    warm_encoder_calls: int


def run_store(
    docs: list[Doc],
    contexts: int = 50,
    chunk_size: int = 120,
    chunk_overlap: int = 20,
    batch: int = 64,
    device: str | None = None,
    encoder_model: str | None = None,
) -> StoreReport:
    """Measure the persistent and in-memory :class:`~semtoken_rag.store.FingerprintStore`.

    Args:
        docs: Source documents; the first ``contexts`` are used.
        contexts: Documents (one question each) compressed cold then warm.
        chunk_size: Words per ingestion chunk.
        chunk_overlap: Words shared by consecutive chunks.
        batch: Keys per ``get_many`` / ``put_many`` call.
        device: Encoder device (``None``: the engine's ``auto``).
        encoder_model: Encoder id or folder (default: the engine's).
    """
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.errors import StoreError
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import FingerprintStore, chunk_words

    rows = docs[:contexts]
    work = [(chunk_words(d.context, chunk_size, chunk_overlap), d.question) for d in rows]
    texts = list(dict.fromkeys(c for chunks, _ in work for c in chunks))
    engine = engine_config(device, encoder_model)
    base = Compressor(SemTokenConfig(**engine))
    enc: Any = base.encoder  # the real TransformerEncoder (tokenizer, model, calls)
    t = time.perf_counter()
    fps = enc.encode_texts(texts)
    encode_s = time.perf_counter() - t
    tokens = sum(base.count_tokens(x) for x in texts)
    items = [(fingerprint_key(x, enc.cache_id), fp) for x, fp in zip(texts, fps, strict=True)]
    keys = [k for k, _ in items]
    res: dict[str, float] = {}

    def throughput(store: FingerprintStore, tag: str) -> None:
        t0 = time.perf_counter()
        for lo in range(0, len(items), batch):
            store.put_many(items[lo : lo + batch])
        t1 = time.perf_counter()
        for lo in range(0, len(keys), batch):
            if any(g is None for g in store.get_many(keys[lo : lo + batch])):
                raise StoreError("a fingerprint just stored was not found")
        t2 = time.perf_counter()
        res[f"{tag}_insert_chunks_per_s"] = len(items) / (t1 - t0)
        res[f"{tag}_lookup_chunks_per_s"] = len(keys) / (t2 - t1)
        res[f"{tag}_lookup_tokens_per_s"] = tokens / (t2 - t1)

    with tempfile.TemporaryDirectory() as tmp:
        with FingerprintStore(Path(tmp) / "s") as s:
            throughput(s, "disk")
            payload = s.stats().payload_bytes
        db_only = sum(p.stat().st_size for p in (Path(tmp) / "s").glob("fingerprints*"))
        with FingerprintStore(Path(tmp) / "s") as s:
            t0 = time.perf_counter()
            s.search(fps[0].vectors[:1], k=5)
            index_s = time.perf_counter() - t0
        with FingerprintStore(Path(tmp) / "s") as s:
            with_index = s.stats().bytes_on_disk
    with FingerprintStore(None) as s:
        throughput(s, "memory")

    timings: dict[str, float] = {}
    calls: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for phase in ("cold", "warm"):
            with FingerprintStore(tmp) as store:
                comp = Compressor(
                    SemTokenConfig(**engine), encoder=enc, store=store, counter=base.counter
                )
                before = enc.calls
                t0 = time.perf_counter()
                for chunks, q in work:
                    comp.compress(chunks, q)
                timings[phase] = time.perf_counter() - t0
                calls[phase] = enc.calls - before
    return StoreReport(
        contexts=len(rows),
        chunks=len(texts),
        tokens=tokens,
        word_vectors=sum(fp.n_words for fp in fps),
        encode_all_s=encode_s,
        disk_insert_chunks_per_s=res["disk_insert_chunks_per_s"],
        disk_lookup_chunks_per_s=res["disk_lookup_chunks_per_s"],
        disk_lookup_tokens_per_s=res["disk_lookup_tokens_per_s"],
        memory_insert_chunks_per_s=res["memory_insert_chunks_per_s"],
        memory_lookup_chunks_per_s=res["memory_lookup_chunks_per_s"],
        memory_lookup_tokens_per_s=res["memory_lookup_tokens_per_s"],
        search_index_build_s=index_s,
        payload_bytes=int(payload),
        bytes_on_disk_db=int(db_only),
        bytes_on_disk_with_index=int(with_index),
        db_bytes_per_1k_tokens=db_only / max(tokens, 1) * 1000,
        disk_bytes_per_1k_tokens_with_index=with_index / max(tokens, 1) * 1000,
        cold_compress_s=timings["cold"],
        warm_compress_s=timings["warm"],
        warm_speedup=timings["cold"] / timings["warm"] if timings["warm"] else 0.0,
        cold_encoder_calls=calls["cold"],
        warm_encoder_calls=calls["warm"],
    )
