"""Shared helpers of the fingerprint-store tests: documents, expected slices, old-format stores,
file digests, no-permission runs, runs in a forked child."""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from semtoken_rag.core.segment import find_words
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.ingestion import IngestOptions, IngestReport, LocalRunner, ingest
from semtoken_rag.store import DocumentFingerprints, FingerprintStore, encode_documents, get_codec
from tests.fakes import FakeEncoder

ROOT = Path(__file__).resolve().parents[1]
#: The store's database file (the store's layout on disk, as documented in docs/store.md).
DB_NAME = "fingerprints.sqlite3"

#: The default codec with a small training threshold, so tests train it with fake vectors.
SMALL_PQ = get_codec("pq64").with_options(train_min=1024)
#: Words a chunk needs for the locator's guarantee that it is found inside a stored document
#: (winnowing window 16 + shingle 4 - 1, semtoken_rag/store/words.py); shorter chunks are
#: found only by their exact key or by chance.
GUARANTEED_WORDS = 19


def texts(n: int, tag: str = "t") -> list[str]:
    """``n`` distinct short documents (14 words each)."""
    return [
        f"Chunk {tag}{i} tells of item {i * 7} and the river stone. It ends here {i}."
        for i in range(n)
    ]


def long_texts(n: int, tag: str = "d", words: int = 60) -> list[str]:
    """``n`` distinct documents of ``words`` words (well above a shingle window)."""
    vocab = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "river",
        "stone",
        "ledger",
        "clause",
        "party",
        "notice",
        "harbour",
        "lamp",
    ]
    out = []
    for i in range(n):
        rng = np.random.default_rng([i, len(tag), sum(map(ord, tag))])
        body = " ".join(vocab[j] for j in rng.integers(0, len(vocab), words - 4))
        out.append(f"Document {tag}{i}: {body} (end {i}).")
    return out


def narrative_documents(shared_data: Path, n: int) -> list[str]:
    """The first ``n`` distinct NarrativeQA contexts (real prose, 200-950 words)."""
    out: list[str] = []
    with (shared_data / "narrativeqa" / "test.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                ctx = json.loads(line)["context"]
                if ctx not in out:
                    out.append(ctx)
                    if len(out) == n:
                        break
    return out


def fill(
    store: FingerprintStore, enc: FakeEncoder, docs: Sequence[object], **options: object
) -> IngestReport:
    """Ingest ``docs`` into ``store`` with ``enc`` (no progress bar)."""
    opts = IngestOptions(progress=False, **options)  # type: ignore[arg-type]
    return ingest(docs, store, LocalRunner(enc), opts)


def encoded(store: FingerprintStore, enc: FakeEncoder, docs: Sequence[str]) -> list:
    """The writer's input for ``docs``: fingerprints encoded with ``store``'s codebooks."""
    fps = enc.encode_texts(list(docs))
    items = [
        DocumentFingerprints(fingerprint_key(t, enc.cache_id), t, fp)
        for t, fp in zip(docs, fps, strict=True)
    ]
    return encode_documents(items, store.codec_set(enc.dim), encoder=enc.cache_id)


def keys(enc: FakeEncoder, docs: Sequence[str]) -> list[str]:
    return [fingerprint_key(t, enc.cache_id) for t in docs]


def words_slice(doc: str, lo: int, hi: int) -> str:
    """The verbatim text of words ``[lo, hi)`` of ``doc`` (a chunk a word splitter cuts)."""
    spans = find_words(doc)
    return doc[int(spans[lo, 0]) : int(spans[hi - 1, 1])]


def word_index(doc: str, char: int) -> int:
    """Index of the word of ``doc`` that contains (or starts after) character ``char``."""
    spans = find_words(doc)
    return int(np.searchsorted(spans[:, 1], char, side="right"))


def expected_slice(doc_fp: ChunkFingerprints, first_word: int, chunk: str) -> ChunkFingerprints:
    """What a store must serve for ``chunk`` cut from a document whose fingerprints are
    ``doc_fp``, starting at its word ``first_word``: the document's vectors of those words,
    with the chunk's own word spans."""
    spans = find_words(chunk)
    return ChunkFingerprints(doc_fp.vectors[first_word : first_word + len(spans)], spans)


def cosines(got: ChunkFingerprints, ref: ChunkFingerprints) -> np.ndarray:
    """Per-word cosine of served vs original vectors (1.0 for an empty chunk)."""
    if ref.n_words == 0:
        return np.ones(1, np.float32)
    return np.sum(got.vectors * ref.vectors, axis=1) / np.linalg.norm(ref.vectors, axis=1)


def same_exactly(got: ChunkFingerprints | None, ref: ChunkFingerprints) -> bool:
    """Bit-identical vectors and spans, with the documented dtypes."""
    return (
        got is not None
        and got.vectors.dtype == np.float32
        and got.word_spans.dtype == np.int64
        and got.vectors.shape == ref.vectors.shape
        and got.vectors.tobytes() == np.ascontiguousarray(ref.vectors, np.float32).tobytes()
        and np.array_equal(got.word_spans, ref.word_spans)
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


def write_old_format_store(directory: Path, version: int, journal: str = "wal") -> None:
    """A minimal database as an older semtoken-rag left it: a ``meta`` table stamped with
    ``version`` and an ``entries`` table of chunk-keyed rows, in SQLite journal mode
    ``journal`` (older versions used WAL; a copy made with other tools may not)."""
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(directory / DB_NAME, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode={journal}")
        conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value NOT NULL)")
        conn.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, key TEXT UNIQUE, vectors BLOB)")
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("format_version", version), ("codec", "float16"), ("n_entries", 1)],
        )
        conn.execute("INSERT INTO entries(key, vectors) VALUES ('k', x'00')")
    finally:
        conn.close()


def digest(path: Path) -> dict[str, str]:
    """Relative name -> sha256 of every file under ``path`` (to prove nothing changed)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def sql(path: Path, query: str, args: Sequence[object] = ()) -> list[tuple]:
    """Run one statement on a store's database file directly (to inspect or damage it)."""
    conn = sqlite3.connect(path / DB_NAME, isolation_level=None)
    try:
        return conn.execute(query, tuple(args)).fetchall()
    finally:
        conn.close()


def info_cli(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``semtoken-rag store info PATH [extra]`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "semtoken_rag.cli.main", "store", "info", str(path), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


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


def run_in_child(body: Callable[[], str], timeout: float = 10.0) -> str:
    """Run ``body`` in a forked child: what it returned, ``"Type: message"`` if it raised, or
    ``"hung"`` when it did not end within ``timeout`` seconds (then it is killed).  The child
    reports through a pipe and ends with ``os._exit``, never returning into pytest."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                outcome = body()
            except BaseException as exc:  # the outcome is the test's subject
                outcome = f"{type(exc).__name__}: {exc}"
            data = outcome.encode()
            while data:
                data = data[os.write(write, data) :]
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        if not select.select([read], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
    finally:
        os.close(read)
    assert os.waitpid(pid, 0)[1] == 0
    return b"".join(chunks).decode()
