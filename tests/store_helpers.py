"""Shared helpers of the fingerprint-store tests: items, format-1 stores, no-permission runs."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.store.codecs import get_codec
from semtoken_rag.store.legacy import V1_SCHEMA, v1_checksum
from tests.fakes import FakeEncoder

ROOT = Path(__file__).resolve().parents[1]

#: The default codec with a small training threshold, so tests train it with fake vectors.
SMALL_PQ = get_codec("pq64").with_options(train_min=1024)


def texts(n: int, tag: str = "t") -> list[str]:
    return [
        f"Chunk {tag}{i} tells of item {i * 7} and the river stone. It ends here {i}."
        for i in range(n)
    ]


def items(enc: FakeEncoder, chunk_texts: list[str]) -> list[tuple[str, ChunkFingerprints]]:
    return [
        (fingerprint_key(t, enc.cache_id), fp)
        for t, fp in zip(chunk_texts, enc.encode_texts(chunk_texts), strict=True)
    ]


def cosines(got: ChunkFingerprints, ref: ChunkFingerprints) -> np.ndarray:
    """Per-word cosine of stored vs original vectors (1.0 for an empty chunk)."""
    if ref.n_words == 0:
        return np.ones(1, np.float32)
    return np.sum(got.vectors * ref.vectors, axis=1) / np.linalg.norm(ref.vectors, axis=1)


def same_exactly(got: ChunkFingerprints | None, ref: ChunkFingerprints) -> bool:
    return (
        got is not None
        and got.vectors.dtype == np.float32
        and got.word_spans.dtype == np.int64
        and got.vectors.tobytes() == ref.vectors.tobytes()
        and got.word_spans.tobytes() == ref.word_spans.tobytes()
    )


def close_enough(got: ChunkFingerprints | None, ref: ChunkFingerprints, floor: float) -> bool:
    """Shapes, dtypes, unit norm and exact spans; mean cosine to the original >= ``floor``."""
    if got is None or got.vectors.dtype != np.float32 or got.word_spans.dtype != np.int64:
        return False
    if got.vectors.shape != ref.vectors.shape or not np.array_equal(got.word_spans, ref.word_spans):
        return False
    if ref.n_words and not np.allclose(np.linalg.norm(got.vectors, axis=1), 1.0, atol=1e-5):
        return False
    return float(cosines(got, ref).mean()) >= floor


def write_v1_store(directory: Path, entries: list[tuple[str, ChunkFingerprints]]) -> None:
    """A store exactly as semtoken-rag format 1 wrote it (float32 + int64, v1 checksums)."""
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(directory / "fingerprints.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(V1_SCHEMA)
    vectors = sum(fp.n_words for _, fp in entries)
    payload = sum(fp.nbytes for _, fp in entries)
    meta = [
        ("format_version", 1),
        ("token", "0" * 32),
        ("generation", 1),
        ("deletions", 0),
        ("n_entries", len(entries)),
        ("n_vectors", vectors),
        ("payload_bytes", payload),
    ]
    conn.executemany("INSERT INTO meta VALUES (?, ?)", meta)
    conn.execute("BEGIN")
    for key, fp in entries:
        vec = np.ascontiguousarray(fp.vectors, dtype="<f4").tobytes()
        spans = np.ascontiguousarray(fp.word_spans, dtype="<i8").tobytes()
        conn.execute(
            "INSERT INTO entries(key, n_words, dim, nbytes, last_used, checksum, vectors, spans) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, fp.n_words, fp.dim, len(vec) + len(spans), time.time(),
             v1_checksum(key, fp.n_words, fp.dim, vec, spans), vec, spans),
        )  # fmt: skip
    conn.execute("COMMIT")
    conn.close()
    (directory / "vectors.faiss").write_bytes(b"SEMTKIDX format-1 index (a derived cache)")


def run_without_write_permission(directory: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (Python, gets the directory as ``sys.argv[1]``) as a process that cannot
    write ``directory``: the directory is made read-only; as root (which ignores permissions),
    the process additionally drops CAP_DAC_OVERRIDE with ``setpriv``.  Skips where impossible.
    """
    argv = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + code]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop write permission")
        argv = [
            "setpriv",
            "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search",
            *argv,
        ]
    mode = directory.stat().st_mode
    directory.chmod(0o555)
    try:
        return subprocess.run(
            [*argv, str(directory)], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
    finally:
        directory.chmod(mode)
