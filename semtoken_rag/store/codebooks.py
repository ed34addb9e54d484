"""The codebooks of one store: encoding new entries, training, decoding rows.

Life of a codec (why entries can be in two codebooks):

1. A store of a trained codec (SQ, PQ, PCA) starts *untrained*: entries are stored in the
   :data:`~semtoken_rag.store.codecs.STAGING` codebook (float16, 768 bytes per 384-dim word).
2. The write that brings the staged vectors of a dimension to ``train_min`` trains the codec
   on them (:func:`~semtoken_rag.store.codecs.training_sample`: all of them, or ``train_max``
   drawn with the spec's seed, in entry-id order; FAISS k-means seeded likewise), stores the
   codebook with its digest, and re-encodes the staged entries, all in that one transaction.
3. From then on entries are encoded with the codebook, except an entry whose decoded vectors
   fit it badly (mean cosine more than :data:`GUARD_MARGIN` below the training sample's, e.g.
   vectors of another encoder with the same dimension): it stays in float16, so a codebook
   never degrades vectors it was not trained for.

A codebook is immutable once written; every entry names its codebook and its checksum binds the
codebook's digest, so no row is ever decoded with another codebook.  A codebook that fails its
digest or that FAISS cannot read is *damage* (the caller quarantines the database).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.store import db
from semtoken_rag.store.codecs import (
    STAGING,
    Codebook,
    CodecSpec,
    VectorCodec,
    build_codec,
    raw_codebook,
    row_cosines,
    train,
    training_sample,
)
from semtoken_rag.store.entries import checksum
from semtoken_rag.store.spans import decode_spans, encode_spans

logger = logging.getLogger("semtoken_rag.store")

#: An entry whose mean decoded cosine is this far below the training sample's stays float16.
GUARD_MARGIN = 0.1


class DamagedCodebook(Exception):
    """Internal: a codebook fails its digest or cannot be read (the database is damaged)."""


@dataclass(frozen=True)
class Entry:
    """One row of ``entries``: encoded by :meth:`Codebooks.encode_many` (``id`` 0 until inserted) or
    read back with :meth:`from_row` (``codebook`` is a codebook id)."""

    key: str
    n_words: int
    dim: int
    codebook: int
    checksum: bytes
    vectors: bytes
    spans: bytes
    id: int = 0

    @property
    def nbytes(self) -> int:
        return len(self.vectors) + len(self.spans)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Entry:
        """From the first columns of a ``SELECT`` of :data:`ROW_COLUMNS`."""
        eid, key, n, d, cb, csum, vec, spans = row[:8]
        return cls(key, n, d, cb, bytes(csum), bytes(vec), bytes(spans), eid)


#: Columns of ``entries`` that :meth:`Entry.from_row` reads, in order.
ROW_COLUMNS = "id, key, n_words, dim, codebook, checksum, vectors, spans"


class Codebooks:
    """Cache of a store's codebooks and their runtime codecs (thread-safe under the store lock).

    Args:
        spec: The store's codec.
        tables: Names of the codebooks and entries tables (the migration fills others).
    """

    def __init__(
        self, spec: CodecSpec, *, tables: tuple[str, str] = ("codebooks", "entries")
    ) -> None:
        self.spec = spec
        self.tables = tables
        self._books: dict[int, Codebook] = {}
        self._codecs: dict[int, VectorCodec] = {}

    # -- reading ------------------------------------------------------------------------------
    def refresh(self, conn: sqlite3.Connection) -> None:
        """Load codebooks written since the last call (by this or another process).

        Raises:
            DamagedCodebook: a codebook fails its digest or FAISS cannot read it.
        """
        for cid, book in db.load_codebooks(conn, self.tables[0]).items():
            if cid in self._books:
                continue
            try:
                self._codecs[cid] = build_codec(book)
            except ValueError as exc:
                raise DamagedCodebook(str(exc)) from exc
            self._books[cid] = book

    def books(self) -> list[Codebook]:
        """The loaded codebooks."""
        return list(self._books.values())

    def codec(self, cid: int) -> VectorCodec | None:
        """The runtime codec of a loaded codebook."""
        return self._codecs.get(cid)

    def check(self, row: Entry) -> VectorCodec | None:
        """The codec to decode ``row`` with, or ``None`` when the row is damaged: unknown
        codebook, another dimension, payload size or checksum that disagree."""
        book = self._books.get(row.codebook)
        codec = self._codecs.get(row.codebook)
        if (
            book is None
            or codec is None
            or book.dim != row.dim
            or len(row.vectors) != row.n_words * codec.code_size
            or checksum(row.key, row.n_words, row.dim, book.sha256, row.vectors, row.spans)
            != row.checksum
        ):
            return None
        return codec

    def ensure(self, conn: sqlite3.Connection, rows: Sequence[Entry]) -> None:
        """Load the codebooks ``rows`` name if some are not loaded yet."""
        if any(r.codebook not in self._books for r in rows):
            self.refresh(conn)

    def decode_rows(
        self, conn: sqlite3.Connection, rows: Sequence[Entry]
    ) -> tuple[dict[int, ChunkFingerprints], list[Entry]]:
        """Verify and decode rows; one FAISS decode call per codebook.

        Returns:
            ``(fingerprints by row id, damaged rows)`` (see :meth:`check`; undecodable spans
            are damage too).
        """
        self.ensure(conn, rows)
        good: dict[int, list[Entry]] = {}
        damaged: list[Entry] = []
        for r in rows:
            if self.check(r) is None:
                damaged.append(r)
            else:
                good.setdefault(r.codebook, []).append(r)
        out: dict[int, ChunkFingerprints] = {}
        for cid, group in good.items():
            codec = self._codecs[cid]
            codes = np.frombuffer(b"".join(r.vectors for r in group), dtype=np.uint8)
            vectors = codec.decode(codes.reshape(-1, codec.code_size))
            lo = 0
            for r in group:
                try:
                    spans = decode_spans(r.spans, r.n_words)
                except ValueError:
                    damaged.append(r)
                else:
                    out[r.id] = ChunkFingerprints(vectors[lo : lo + r.n_words], spans)
                lo += r.n_words
        return out, damaged

    # -- writing (inside the caller's write transaction) -------------------------------------
    def _find(self, codec: str, dim: int) -> Codebook | None:
        return next((b for b in self._books.values() if b.codec == codec and b.dim == dim), None)

    def _raw(self, conn: sqlite3.Connection, spec: CodecSpec, dim: int) -> Codebook:
        """The raw (numpy) codebook of ``spec`` at ``dim``, created on first use."""
        book = self._find(spec.name, dim)
        if book is None:
            factory, state, sha = raw_codebook(spec, dim)
            db.insert_codebook(
                conn,
                codec=spec.name,
                dim=dim,
                factory=factory,
                state=state,
                sha256=sha,
                table=self.tables[0],
            )
            self.refresh(conn)
            book = self._find(spec.name, dim)
        assert book is not None
        return book

    def encode_many(
        self, conn: sqlite3.Connection, items: Sequence[tuple[str, ChunkFingerprints]]
    ) -> list[Entry]:
        """Encode entries with the store's codebook for their dimension (or float16 staging).

        One FAISS encode and one decode per dimension for the whole batch: why, FAISS's
        product quantizer encodes a batch about 1.5x faster per vector than entry by entry.
        An entry whose decoded vectors fit the codebook clearly worse than its training sample
        did (mean cosine more than ``GUARD_MARGIN`` below) is kept in float16 instead.

        Returns:
            One :class:`Entry` per item, in order.
        """
        out: list[Entry | None] = [None] * len(items)
        by_dim: dict[int, list[int]] = {}
        for i, (_, fp) in enumerate(items):
            by_dim.setdefault(fp.dim, []).append(i)
        for dim, idx in by_dim.items():
            book = self._find(self.spec.name, dim)
            if book is None:
                book = self._raw(conn, STAGING if self.spec.trained else self.spec, dim)
            codec = self._codecs[book.id]
            vectors = np.concatenate([items[i][1].vectors for i in idx]).reshape(-1, dim)
            codes = codec.encode(vectors)
            guard = self.spec.trained and book.codec == self.spec.name
            cos = row_cosines(codec.decode(codes), vectors) if guard else None
            lo = 0
            for i in idx:
                key, fp = items[i]
                hi = lo + fp.n_words
                entry_book, entry_codes = book, codes[lo:hi]
                if cos is not None and fp.n_words:
                    fit = float(cos[lo:hi].mean())
                    if fit < book.train_cos - GUARD_MARGIN:
                        logger.info(
                            "entry %s fits codebook %d badly (cosine %.3f, trained %.3f): kept "
                            "in float16",
                            key[:16],
                            book.id,
                            fit,
                            book.train_cos,
                        )
                        entry_book = self._raw(conn, STAGING, dim)
                        entry_codes = self._codecs[entry_book.id].encode(fp.vectors)
                spans = encode_spans(fp.word_spans)
                out[i] = self._entry(key, fp.n_words, dim, entry_book, entry_codes.tobytes(), spans)
                lo = hi
        return [e for e in out if e is not None]

    @staticmethod
    def _entry(key: str, n: int, dim: int, book: Codebook, vec: bytes, spans: bytes) -> Entry:
        return Entry(
            key, n, dim, book.id, checksum(key, n, dim, book.sha256, vec, spans), vec, spans
        )

    def maybe_train(self, conn: sqlite3.Connection, dims: set[int], encoder: str = "") -> bool:
        """Train the codec for each dimension whose staged vectors reached ``train_min``.

        Returns:
            Whether a codebook was trained (and staged entries re-encoded, freeing pages).
        """
        trained = False
        if not self.spec.trained:
            return trained
        for dim in sorted(dims):
            staging = self._find(STAGING.name, dim)
            if self._find(self.spec.name, dim) is not None or staging is None:
                continue
            staged = conn.execute(
                f"SELECT n_vectors FROM {self.tables[0]} WHERE id = ?", (staging.id,)
            ).fetchone()[0]
            if staged >= self.spec.train_min:
                trained |= self._train(conn, dim, staging, encoder)
        return trained

    def add_trained(
        self,
        conn: sqlite3.Connection,
        dim: int,
        trained: tuple[str, bytes, bytes, float],
        n_sample: int,
        encoder: str = "",
    ) -> None:
        """Inside a write transaction: store the output of
        :func:`~semtoken_rag.store.codecs.train` as this store's codebook for ``dim``."""
        factory, state, sha, train_cos = trained
        db.insert_codebook(
            conn,
            codec=self.spec.name,
            dim=dim,
            factory=factory,
            state=state,
            sha256=sha,
            encoder=encoder,
            train_vectors=n_sample,
            train_cos=train_cos,
            table=self.tables[0],
        )
        self.refresh(conn)

    def _train(self, conn: sqlite3.Connection, dim: int, staging: Codebook, encoder: str) -> bool:
        t0 = time.perf_counter()
        rows = [
            Entry.from_row(r)
            for r in conn.execute(
                f"SELECT {ROW_COLUMNS} FROM {self.tables[1]} WHERE codebook = ? ORDER BY id",
                (staging.id,),
            )
        ]
        decoded, damaged = self.decode_rows(conn, rows)
        rows = [r for r in rows if r.id in decoded]
        sample = training_sample(
            np.concatenate([decoded[r.id].vectors for r in rows])
            if rows
            else np.zeros((0, dim), np.float32),
            self.spec,
        )
        if len(sample) < self.spec.train_min:  # damaged rows left too few: train later
            return False
        self.add_trained(conn, dim, train(self.spec, sample), len(sample), encoder)
        moved = freed = vectors = 0
        entries = self.encode_many(conn, [(r.key, decoded[r.id]) for r in rows])
        for r, entry in zip(rows, entries):
            if entry.codebook == staging.id:
                continue
            conn.execute(
                f"UPDATE {self.tables[1]} SET codebook = ?, nbytes = ?, checksum = ?, "
                "vectors = ?, spans = ? WHERE id = ?",
                (entry.codebook, entry.nbytes, entry.checksum, entry.vectors, entry.spans, r.id),
            )
            db.count_codebook(conn, staging.id, -1, -r.n_words, self.tables[0])
            db.count_codebook(conn, entry.codebook, 1, r.n_words, self.tables[0])
            moved += 1
            vectors += r.n_words
            freed += len(r.vectors) + len(r.spans) - entry.nbytes
        if self.tables[1] == "entries":  # the migration recounts at its end
            db.bump(conn, payload=-freed, deletions=1)  # deletions: search index rebuilds
        logger.info(
            "codec %s trained for dim %d in %.1f s; %d staged entries (%d vectors) re-encoded, "
            "%d bytes freed%s",
            self.spec.name,
            dim,
            time.perf_counter() - t0,
            moved,
            vectors,
            freed,
            f"; {len(damaged)} damaged rows left as they are" if damaged else "",
        )
        return True
