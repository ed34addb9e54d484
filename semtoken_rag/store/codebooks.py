"""Codebooks: a codec made concrete for one dimension, what an encoder needs to use it, and the
store's cache of them.

A trained codec starts with float16 staging blocks and is trained by the write that brings them
to ``train_min`` (docs/store.md, "Training"); after that a block the codebook fits badly (e.g.
another encoder's) stays float16.  A codebook is immutable and each block's checksum binds its
digest; one that fails its digest or that FAISS cannot read is damage.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

import numpy as np

from semtoken_rag import optional
from semtoken_rag.cache import LRUMemo
from semtoken_rag.store.codecs import STAGING, CodecSpec, FaissCodec, RawCodec, VectorCodec
from semtoken_rag.store.db import select_in

#: A block whose mean decoded cosine is this far below the training sample's stays float16.
GUARD_MARGIN = 0.1


class DamagedCodebook(Exception):
    """Internal: a codebook fails its digest or cannot be read (the database is damaged)."""


@dataclass(frozen=True)
class Codebook:
    """A codec made concrete for one dimension (a ``codebooks`` row): ``factory`` a FAISS factory
    string or numpy dtype, ``state`` ``faiss.serialize_index`` bytes (empty for raw codecs),
    ``sha256`` the digest of the rest, ``train_cos`` the training sample's mean decoded cosine."""

    id: int
    codec: str
    dim: int
    factory: str
    state: bytes
    sha256: bytes
    train_cos: float = 1.0

    @staticmethod
    def digest(codec: str, dim: int, factory: str, state: bytes) -> bytes:
        h = hashlib.sha256(f"{codec}\0{dim}\0{factory}\0".encode())
        h.update(state)
        return h.digest()

    @property
    def intact(self) -> bool:
        """Whether the stored digest matches the content."""
        return self.digest(self.codec, self.dim, self.factory, self.state) == self.sha256


#: Ready codecs by codebook digest (a race builds one twice: harmless), bounded (~400 KB each).
_RUNTIME: LRUMemo[bytes, VectorCodec] = LRUMemo(64)


def runtime_codec(book: Codebook) -> VectorCodec:
    """The ready codec of a codebook (built once per process and digest).

    Raises:
        DamagedCodebook: the codebook fails its digest or FAISS cannot read it.
    """
    hit = _RUNTIME.get(book.sha256)
    if hit is not None:
        return hit
    if not book.intact:
        raise DamagedCodebook(f"codebook {book.id} ({book.codec}, dim {book.dim}) fails its digest")
    codec: VectorCodec
    if not book.state:
        codec = RawCodec(book.dim, book.factory)
    else:
        faiss = optional.faiss("the fingerprint store's codec")
        try:
            index = faiss.deserialize_index(np.frombuffer(book.state, dtype=np.uint8))
        except RuntimeError as exc:
            raise DamagedCodebook(f"codebook {book.id} is unreadable by FAISS: {exc}") from exc
        if int(index.d) != book.dim or not index.is_trained:
            raise DamagedCodebook(f"codebook {book.id} disagrees with its header")
        codec = FaissCodec(index, faiss)
    _RUNTIME.put(book.sha256, codec)
    return codec


@dataclass(frozen=True)
class CodecSet:
    """What whoever runs the encoder needs to encode blocks for one store and dimension: plain
    data, so it travels to Ray actors (:func:`runtime_codec` rebuilds the FAISS objects there).

    Attributes:
        book: The store's codebook for this dimension (its trained one, or :data:`STAGING`
            while it is untrained, or the raw codec of a raw store).
        staging: The float16 codebook for blocks the trained codebook fits badly.
        guard: Whether the fidelity guard applies (``book`` is a trained codebook).
        to_train: Words still to store at this dimension before the codec trains (0 once
            trained, and for a raw codec): the sample an ingestion encodes first.
    """

    book: Codebook
    staging: Codebook
    guard: bool
    to_train: int = 0

    @property
    def digests(self) -> dict[int, bytes]:
        """Codebook id -> digest of every codebook this set may encode with."""
        return {self.book.id: self.book.sha256, self.staging.id: self.staging.sha256}


_COLUMNS = "id, codec, dim, factory, state, sha256, train_cos"


class Codebooks:
    """The store's codebooks of codec ``spec``, from SQLite, cached under the store's lock."""

    def __init__(self, spec: CodecSpec) -> None:
        self.spec = spec
        self.by_id: dict[int, Codebook] = {}  # loaded, by id

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Load codebooks written since the last call (by this or another process).

        Raises:
            DamagedCodebook: a new codebook fails its digest or FAISS cannot read it.
        """
        new = [i for (i,) in conn.execute("SELECT id FROM codebooks") if i not in self.by_id]
        # Only new rows (a codebook's state is ~400 KB).
        for row in select_in(conn, f"SELECT {_COLUMNS} FROM codebooks WHERE id IN ({{}})", new):
            book = Codebook(*row)
            if not book.intact:  # checked on every load: the runtime cache is by digest
                raise DamagedCodebook(f"codebook {book.id} ({book.codec}) fails its digest")
            runtime_codec(book)
            self.by_id[book.id] = book

    def find(self, codec: str, dim: int) -> Codebook | None:
        """The codebook of ``codec`` at ``dim``, if loaded."""
        return next((b for b in self.by_id.values() if b.codec == codec and b.dim == dim), None)

    def add(
        self,
        conn: sqlite3.Connection,
        codec: str,
        dim: int,
        factory: str,
        state: bytes,
        train_cos: float,
        train_vectors: int,
        encoder: str,
    ) -> Codebook:
        """Inside a write transaction: store a codebook and load it."""
        conn.execute(
            "INSERT INTO codebooks(codec, dim, factory, encoder, train_vectors, train_cos, "
            "created, sha256, state) VALUES (?, ?, ?, ?, ?, ?, julianday('now'), ?, ?)",
            (codec, dim, factory, encoder, train_vectors, train_cos,
             Codebook.digest(codec, dim, factory, state), state),
        )  # fmt: skip
        self.refresh(conn)
        book = self.find(codec, dim)
        assert book is not None
        return book

    def codec_set(self, conn: sqlite3.Connection, dim: int) -> CodecSet:
        """Inside a write transaction: the :class:`CodecSet` for vectors of ``dim`` (its raw
        codebook, the store's own or float16 staging, is created on first use)."""
        raw = STAGING if self.spec.trained else self.spec
        staging = self.find(raw.name, dim) or self.add(
            conn, raw.name, dim, raw.factory(dim), b"", 1.0, 0, ""
        )
        trained = self.find(self.spec.name, dim) if self.spec.trained else None
        to_train = 0
        if self.spec.trained and trained is None:
            sql = "SELECT n_words FROM codebooks WHERE id = ?"
            to_train = max(
                self.spec.train_min - int(conn.execute(sql, (staging.id,)).fetchone()[0]), 0
            )
        return CodecSet(trained or staging, staging, trained is not None, to_train)
