"""The store at extreme but realistic sizes: a book-length document, a text repeated thousands
of times, a name shared by hundreds of pre-cut windows, one text under thousands of names.

Each test asserts on an operation count (SQLite VM steps, statements, verifications, name
hashes) at two sizes or against the unhinted lookup, never on wall-clock time.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

import semtoken_rag.store.locate as locate
import tests.fakes as fakes
from semtoken_rag.core.segment import find_words
from semtoken_rag.fingerprints import ChunkSource
from semtoken_rag.ingestion import SourceDocument
from semtoken_rag.ingestion.chunking import chunk_words
from semtoken_rag.ingestion.documents import plan_documents
from semtoken_rag.store import FingerprintStore
from tests.fakes import FakeEncoder
from tests.store_helpers import expected_slice, fill, same_exactly, words_slice


@pytest.fixture(autouse=True)
def _fast_fake_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake encoder's per-word vectors, memoised (the same vectors): long documents of a
    small vocabulary then encode in milliseconds."""
    monkeypatch.setattr(fakes, "_word_vec", functools.lru_cache(maxsize=None)(fakes._word_vec))


def book(words: int) -> str:
    """A document of ``words`` words: a small vocabulary, every fifth word unique."""
    return " ".join(f"w{i % 97}x{i % 13}" if i % 5 else f"n{i}" for i in range(words))


@contextmanager
def vm_steps(store: FingerprintStore) -> Iterator[list[int]]:
    """SQLite virtual-machine instructions run on the store's connection inside the block."""
    count = [0]

    def step() -> int:
        count[0] += 1
        return 0

    conn: sqlite3.Connection = store._conn
    conn.set_progress_handler(step, 1)
    try:
        yield count
    finally:
        conn.set_progress_handler(None, 1)


@contextmanager
def statements(store: FingerprintStore) -> Iterator[list[str]]:
    """SQL statements run on the store's connection inside the block."""
    seen: list[str] = []
    conn: sqlite3.Connection = store._conn
    conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


def test_hinted_lookup_reads_no_more_of_a_longer_document() -> None:
    """docs/store.md: only the blocks a chunk covers are read.  A start hint near the beginning
    of a book used to scan every block row after it (``start`` has no index): the work grew
    with the book's length, 8x the unhinted lookup at 600k words."""
    enc = FakeEncoder()
    steps = []
    for words in (8192, 16384):
        doc = book(words)
        with FingerprintStore(codec="float32") as store:
            fill(store, enc, [SourceDocument(doc, names=("book.txt",))])
            chunk = words_slice(doc, 3, 200)
            hint = ChunkSource(document="book.txt", start=doc.index(chunk))
            with vm_steps(store) as count:
                (got,) = store.lookup([chunk], enc.cache_id, [hint])
            ref = expected_slice(enc.encode_texts([doc])[0], 3, chunk)
            assert same_exactly(got, ref)
            steps.append(count[0])
    assert steps[1] < 1.3 * steps[0], steps


def test_hinted_chunk_of_repeated_text_verifies_few_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text of one repeated token (a separator line, a column of zeros) puts a copy of the
    chunk at every word of the blocks around a start hint: each used to be verified and
    decoded in full to find the nearest (an 8,000-word chunk took 0.7 s); now they are tried
    nearest first and the first that verifies is served."""
    enc = FakeEncoder()
    doc = " ".join(["0"] * 6000)
    calls = []
    real = locate.same_words

    def counted(stored: list[str], chunk: list[str]) -> bool:
        calls.append(len(chunk))
        return real(stored, chunk)

    monkeypatch.setattr(locate, "same_words", counted)
    with FingerprintStore(codec="float32") as store:
        fill(store, enc, [SourceDocument(doc, names=("zeros.txt",))])
        first = 3001
        chunk = words_slice(doc, first, first + 400)
        start = int(find_words(doc)[first, 0])
        (got,) = store.lookup([chunk], enc.cache_id, [ChunkSource("zeros.txt", start)])
    assert same_exactly(got, expected_slice(enc.encode_texts([doc])[0], first, chunk))
    assert len(calls) <= locate.MAX_VERIFY, len(calls)


@pytest.mark.parametrize("inside", [True, False], ids=["hit", "straddling-miss"])
def test_a_name_shared_by_many_windows_costs_no_query_per_window(inside: bool) -> None:
    """``semtoken-rag ingest FILE --chunk-size N`` names every window with the file's path, so
    one name holds hundreds of documents.  A chunk hinted with that name used to query the
    shingle index once per shingle *and* per named document (64 of them): 25-30x the queries
    of the same lookup without the hint."""
    enc = FakeEncoder()
    doc = book(64 * 100)
    windows = chunk_words(doc, 64)
    counts = []
    with FingerprintStore(codec="float32") as store:
        fill(store, enc, [SourceDocument(w, names=("book.txt",)) for w in windows])
        first = 64 * 90 + (10 if inside else 40)
        chunk = words_slice(doc, first, first + 40)
        for hint in (None, [ChunkSource(document="book.txt")]):
            with statements(store) as seen:
                (got,) = store.lookup([chunk], enc.cache_id, hint)
            assert (got is not None) == inside  # a straddling chunk is encoded whole
            counts.append(sum("FROM shingles" in s for s in seen))
    shingles = 40 - 3  # at most one query per shingle of the chunk, whatever the name holds
    assert counts[1] <= counts[0] + shingles, counts


class CountedName(str):
    """A document name that counts how often it is hashed."""

    hashes = 0

    def __hash__(self) -> int:
        CountedName.hashes += 1
        return str.__hash__(self)


def test_one_text_under_thousands_of_names_is_planned_in_linear_work() -> None:
    """The same text under thousands of names (a JSONL of records sharing a template page)
    used to rebuild the merged names at every repeat: quadratic, 12 s for 20,000 names."""
    n = 1500
    docs = [SourceDocument("the same page text", names=(CountedName(f"r{i}"),)) for i in range(n)]
    docs.insert(1, SourceDocument("another page", names=("x",)))
    CountedName.hashes = 0
    planned, blank = plan_documents(docs, "fake|dim32")
    assert CountedName.hashes <= 4 * n, CountedName.hashes
    assert blank == 0 and [len(d.names) for d in planned] == [n, 1]
    assert list(planned[0].names) == [f"r{i}" for i in range(n)]
    assert np.array_equal([d.words for d in planned], [4, 2])
