"""Training the store's codec on its staged blocks (once per store and dimension).

Runs in the writer, inside the write transaction that brought the staged (float16) words of a
dimension to the codec's ``train_min``: the sample is every staged vector, documents in key
order (so the order in which batches were committed, e.g. by Ray, changes nothing), or
``train_max`` of them drawn with the spec's seed (:func:`~semtoken_rag.store.codecs.
training_sample`); FAISS's k-means is seeded likewise.  The staged blocks are then re-encoded
with the new codebook (the fidelity guard still judges each block) in the same transaction, so
after a crash the store is either untrained with every staged block, or trained with them all
re-encoded.  This is the one time the writer encodes: every later block arrives encoded.
"""

from __future__ import annotations

import logging
import sqlite3
import time

import numpy as np

from semtoken_rag.store.codebooks import Codebooks, runtime_codec
from semtoken_rag.store.codecs import STAGING, train, training_sample
from semtoken_rag.store.db import BLOCK_BITS
from semtoken_rag.store.encoding import block_checksum, code_vectors, encode_blocks
from semtoken_rag.store.words import unpack

logger = logging.getLogger(__name__)

_STAGED = (
    "SELECT b.id, b.n_words, b.checksum, b.codes, b.words, d.id, d.key, d.dim, b.start "
    "FROM blocks b "
    f"JOIN documents d ON d.id = b.id >> {BLOCK_BITS} WHERE b.codebook = ? ORDER BY d.key, b.id"
)


def maybe_train(conn: sqlite3.Connection, books: Codebooks, dims: set[int], encoder: str) -> bool:
    """Inside a write transaction: train the codec for each dimension whose staged words
    reached ``train_min``.

    Returns:
        Whether a codebook was trained (staged pages were freed: reclaim them after commit).
    """
    spec = books.spec
    trained = False
    for dim in sorted(dims):
        staging = books.find(STAGING.name, dim)
        if not spec.trained or staging is None or books.find(spec.name, dim) is not None:
            continue
        row = conn.execute("SELECT n_words FROM codebooks WHERE id = ?", (staging.id,)).fetchone()
        if row is not None and int(row[0]) >= spec.train_min:
            trained |= _train(conn, books, dim, staging.id, encoder)
    return trained


def _train(conn: sqlite3.Connection, books: Codebooks, dim: int, staging: int, enc: str) -> bool:
    t0 = time.perf_counter()
    book = books.get(staging)
    assert book is not None
    rows = []
    for bid, n, csum, codes, words, doc, key, d, start in conn.execute(_STAGED, (staging,)):
        digest = block_checksum(key, bid & ((1 << BLOCK_BITS) - 1), n, d, book.sha256,
                                bytes(codes), bytes(words))  # fmt: skip
        if d == dim and digest == bytes(csum):  # a damaged block stays as it is (a miss later)
            packed = unpack(bytes(words), n)
            rows.append((bid, n, bytes(codes), packed, doc, key, len(words), start))
    if not rows:
        return False
    staged = runtime_codec(book)
    decoded = staged.decode(
        np.frombuffer(b"".join(r[2] for r in rows), np.uint8).reshape(-1, staged.code_size)
    )
    sample = training_sample(decoded, books.spec)
    if len(sample) < books.spec.train_min:  # damaged blocks left too few: train later
        return False
    factory, state, cos = train(books.spec, sample)
    books.add(conn, books.spec.name, dim, factory, state, cos, len(sample), enc)
    codecs = books.codec_set(conn, dim)
    codes, cosines = code_vectors(decoded, codecs)
    lo = freed = 0
    for bid, n, old, words, doc, key, old_words, start in rows:
        hi = lo + n
        block = encode_blocks(key, decoded[lo:hi], words, codes[lo:hi],
                              None if cosines is None else cosines[lo:hi], codecs, [start],
                              first=bid & ((1 << BLOCK_BITS) - 1))[0]  # fmt: skip
        conn.execute(
            "UPDATE blocks SET codebook = ?, checksum = ?, codes = ?, words = ? WHERE id = ?",
            (block.codebook, block.checksum, block.codes, block.words, bid),
        )
        delta = len(block.codes) + len(block.words) - len(old) - old_words
        conn.execute("UPDATE documents SET nbytes = nbytes + ? WHERE id = ?", (delta, doc))
        freed -= delta
        lo = hi
    logger.info(
        "codec %s trained for dim %d in %.1f s; %d staged blocks re-encoded, %d bytes freed",
        books.spec.name, dim, time.perf_counter() - t0, len(rows), freed,
    )  # fmt: skip
    return True
