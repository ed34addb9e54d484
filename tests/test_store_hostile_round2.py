"""Hostile review of the fingerprint store, round 2: vectors a lossy raw codec cannot hold,
fingerprints of the wrong types, a store used in a forked child."""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import pytest

from semtoken_rag.errors import InvalidInputError, StoreError
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.store import DocumentFingerprints, FingerprintStore, encode_documents
from tests.fakes import FakeEncoder, WhitespaceCounter
from tests.store_helpers import SMALL_PQ, fill, long_texts


@pytest.mark.parametrize("codec", ["float16", SMALL_PQ], ids=["float16", "pq64-staging"])
@pytest.mark.parametrize("scale", [1e6, 1e-9])
def test_float16_blocks_keep_the_direction_of_vectors_float16_cannot_hold(codec, scale):
    """float16 overflows beyond 65,504 (decoded as inf, renormalised to NaN) and flushes tiny
    values to zero: an encoder whose fingerprints are not unit length was served NaN or zero
    vectors from the second call on.  Only a row's direction is kept, so it is kept."""
    enc = FakeEncoder()
    text = "the harbour lamp burned all night over the ledger and the river stone"
    fp = enc.encode_texts([text])[0]
    with FingerprintStore(codec=codec) as store:
        store.put([text], [ChunkFingerprints(fp.vectors * scale, fp.word_spans)], enc.cache_id)
        (got,) = store.lookup([text], enc.cache_id)
    assert got is not None and np.isfinite(got.vectors).all()
    assert np.allclose(np.linalg.norm(got.vectors, axis=1), 1.0, atol=1e-3)
    assert float(np.sum(got.vectors * fp.vectors, axis=1).min()) > 0.999


def _document(text: str, vectors: np.ndarray, spans: np.ndarray) -> DocumentFingerprints:
    enc = FakeEncoder()
    return DocumentFingerprints(
        fingerprint_key(text, enc.cache_id), text, ChunkFingerprints(vectors, spans)
    )


def test_fingerprints_of_another_type_are_typed_errors_and_never_stored(caplog):
    """Vectors of strings or objects failed in numpy (``ufunc 'isfinite' not supported``),
    float word spans in slicing (``slice indices must be integers``), and complex vectors lost
    their imaginary part silently: each is now refused by name, and ``put`` logs and skips it."""
    enc = FakeEncoder()
    text = "alpha beta"
    fp = enc.encode_texts([text])[0]
    bad = {
        "object": (fp.vectors.astype(object), fp.word_spans),
        "<U": (fp.vectors.astype(str), fp.word_spans),
        "complex": (fp.vectors.astype(np.complex64), fp.word_spans),
        "float64 spans": (fp.vectors, fp.word_spans.astype(np.float64)),
    }
    with FingerprintStore(codec="float32") as store:
        codecs = store.codec_set(enc.dim)
        for what, (vectors, spans) in bad.items():
            with pytest.raises(InvalidInputError, match="real vectors with integer word spans"):
                encode_documents([_document(text, vectors, spans)], codecs, encoder=enc.cache_id)
            with caplog.at_level(logging.WARNING):
                caplog.clear()
                store.put([text], [ChunkFingerprints(vectors, spans)], enc.cache_id)
            assert "not stored" in caplog.text, what
        assert len(store) == 0
        assert store.lookup([text], enc.cache_id) == [None]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_writable_store_used_in_a_forked_child_is_a_typed_error(tmp_path):
    """A store opened before a fork (a preloaded web app's workers, a fork ``Pool``): the
    child's first write died in filelock with ``RuntimeError: ... inherited across fork``.  It
    is a :class:`StoreError` saying to open the store in that process; the parent's store, and
    a store the child opens itself, work on."""
    enc = FakeEncoder()
    docs = long_texts(3, "fork")
    store = FingerprintStore(tmp_path, codec="float16")
    fill(store, enc, docs[:1])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what happened through the pipe, never return into pytest
        code = 1
        try:
            try:
                store.put(docs[1:2], enc.encode_texts(docs[1:2]), enc.cache_id)
                outcome = b"no error"
            except StoreError as exc:
                outcome = b"StoreError" if "forked" in str(exc) else str(exc).encode()
            except BaseException as exc:  # the outcome is the test's subject
                outcome = f"{type(exc).__name__}: {exc}".encode()
            with FingerprintStore(tmp_path) as own:
                own.put(docs[2:], enc.encode_texts(docs[2:]), enc.cache_id)
            os.write(write, outcome)
            code = 0
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    outcome = os.read(read, 4096)
    os.close(read)
    assert os.waitpid(pid, 0)[1] == 0
    assert outcome == b"StoreError"
    store.put(docs[1:2], enc.encode_texts(docs[1:2]), enc.cache_id)  # the parent's store works
    assert all(fp is not None for fp in store.lookup(docs, enc.cache_id))
    assert store.verify() == []
    store.close()


def test_an_encoder_id_with_a_lone_surrogate_keys_the_cache_and_is_refused_by_a_store():
    """An encoder id holding a lone surrogate (a model folder name that is not UTF-8, from a
    custom encoder) crashed the key hash with ``UnicodeEncodeError``; the in-memory cache now
    keys it, and a store, whose SQLite text cannot hold it, refuses it by name."""
    from semtoken_rag import Compressor, SemTokenConfig

    enc = FakeEncoder()
    enc.cache_id = "model-\udcff"
    text = "the harbour lamp burned all night over the ledger and the river stone"
    comp = Compressor(SemTokenConfig(), encoder=enc, counter=WhitespaceCounter())
    assert comp.compress([text], "lamp").encoder_calls == 1
    assert comp.compress([text], "lamp").encoder_calls == 0  # the memory cache hit
    with FingerprintStore() as store:
        with pytest.raises(InvalidInputError, match="encoder_id must be valid Unicode"):
            store.lookup([text], enc.cache_id)
        with pytest.raises(InvalidInputError, match="encoder_id must be valid Unicode"):
            store.put([text], enc.encode_texts([text]), enc.cache_id)


def test_a_store_in_a_folder_without_search_permission_is_one_typed_line(tmp_path, monkeypatch):
    """A read-only open (``store info``, ``compress --store``) of a store inside a folder the
    user cannot enter raised ``PermissionError`` from ``is_file`` (Python 3.11), exit 1; a
    writable open already said ``StoreError``.  Simulated: the tests run as root."""
    from pathlib import Path

    from semtoken_rag.cli.main import main

    FingerprintStore(tmp_path / "st").close()
    real = os.stat

    def denied(path, *args, **kwargs):  # what stat says inside a folder without search (x)
        if tmp_path / "st" in Path(path).parents:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", denied)
    with pytest.raises(StoreError, match=r"cannot read .*st: Permission denied"):
        FingerprintStore(tmp_path / "st", read_only=True)
    assert main(["store", "info", str(tmp_path / "st")]) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_used_in_a_forked_child_reads_through_its_own_connection(tmp_path, read_only):
    """SQLite forbids using a connection in a forked child.  The child's lookups read through
    the parent's connection, and its ``close`` checkpointed the parent's write-ahead log through
    it (the log, 0 bytes after).  The child now opens a read-only connection of its own: it
    serves what the parent wrote before and after the fork, leaves the parent's log alone, and
    the parent's store works on."""
    enc = FakeEncoder()
    docs = long_texts(4, "forked")
    writer = FingerprintStore(tmp_path, codec="float16")
    fill(writer, enc, docs[:2])
    store = FingerprintStore(tmp_path, read_only=True) if read_only else writer
    assert all(fp is not None for fp in store.lookup(docs[:2], enc.cache_id))
    wal = tmp_path / "fingerprints.sqlite3-wal"
    go_r, go_w = os.pipe()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            os.read(go_r, 1)  # the parent has written docs[2:3] by now
            hits = [fp is not None for fp in store.lookup(docs[:3], enc.cache_id)]
            size = wal.stat().st_size
            store.close()
            outcome = f"{hits} {wal.stat().st_size == size}"
            os.write(write, outcome.encode())
            code = 0
        finally:
            os._exit(code)
    fill(writer, enc, docs[2:3])
    os.write(go_w, b"x")
    outcome = os.read(read, 4096).decode()
    assert os.waitpid(pid, 0)[1] == 0
    assert outcome == "[True, True, True] True"  # served, and the parent's log left alone
    fill(writer, enc, docs[3:])
    assert all(fp is not None for fp in store.lookup(docs, enc.cache_id))
    assert writer.verify() == []
    for s in {id(store): store, id(writer): writer}.values():
        s.close()
