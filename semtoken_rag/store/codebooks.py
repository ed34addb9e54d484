"""Codebooks: a codec made concrete for one dimension, what an encoder needs to use it, and the
store's cache of them.

Life of a codec (why blocks can be in two codebooks):

1. A store of a trained codec (SQ, PQ) starts *untrained*: blocks are stored in the
   :data:`~semtoken_rag.store.codecs.STAGING` codebook (float16).
2. The write that brings the staged words of a dimension to ``train_min`` trains the codec on
   them and re-encodes them, in that one transaction (:mod:`semtoken_rag.store.training`).
3. From then on blocks are encoded with the codebook by whoever runs the encoder (a
   :class:`CodecSet` travels to Ray actors), except a block whose decoded vectors fit it badly
   (mean cosine more than :data:`GUARD_MARGIN` below the training sample's, e.g. vectors of
   another encoder with the same dimension): it stays float16, so a codebook never degrades
   vectors it was not trained for.

A codebook is immutable once written; every block names its codebook and its checksum binds the
codebook's digest, so no block is ever decoded with another codebook.  A codebook that fails its
digest or that FAISS cannot read is damage.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass

import numpy as np

from semtoken_rag import optional
from semtoken_rag.store.codecs import STAGING, CodecSpec, FaissCodec, RawCodec, VectorCodec

#: A block whose mean decoded cosine is this far below the training sample's stays float16.
GUARD_MARGIN = 0.1


class DamagedCodebook(Exception):
    """Internal: a codebook fails its digest or cannot be read (the database is damaged)."""


@dataclass(frozen=True)
class Codebook:
    """A codec made concrete for one dimension, as stored in the ``codebooks`` table.

    Attributes:
        id: Row id (blocks name the codebook they were encoded with).
        codec: Spec name.
        dim: Vector dimension.
        factory: FAISS factory string, or the numpy dtype of a raw codec.
        state: ``faiss.serialize_index`` bytes of a trained codec (empty for raw codecs).
        sha256: Digest of codec, dim, factory and state (checked before any use).
        train_cos: Mean cosine of decoded vs original vectors over the training sample.
    """

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


_RUNTIME: dict[bytes, VectorCodec] = {}
_RUNTIME_LOCK = threading.Lock()


def runtime_codec(book: Codebook) -> VectorCodec:
    """The ready codec of a codebook (built once per process and digest).

    Raises:
        DamagedCodebook: the codebook fails its digest or FAISS cannot read it.
    """
    with _RUNTIME_LOCK:
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
    with _RUNTIME_LOCK:
        return _RUNTIME.setdefault(book.sha256, codec)


@dataclass(frozen=True)
class CodecSet:
    """What whoever runs the encoder needs to encode blocks for one store and dimension.

    Plain data (ids, bytes, numbers), so it travels to Ray actors; the FAISS objects are
    rebuilt there by :func:`runtime_codec`.

    Attributes:
        book: The store's codebook for this dimension (its trained one, or :data:`STAGING`
            while it is untrained, or the raw codec of a raw store).
        staging: The float16 codebook for blocks the trained codebook fits badly.
        guard: Whether the fidelity guard applies (``book`` is a trained codebook).
    """

    book: Codebook
    staging: Codebook
    guard: bool

    @property
    def digests(self) -> dict[int, bytes]:
        """Codebook id -> digest of every codebook this set may encode with."""
        return {self.book.id: self.book.sha256, self.staging.id: self.staging.sha256}


_COLUMNS = "id, codec, dim, factory, state, sha256, train_cos"


class Codebooks:
    """The store's codebooks, loaded from SQLite and cached (under the store's lock).

    Args:
        spec: The store's codec.
    """

    def __init__(self, spec: CodecSpec) -> None:
        self.spec = spec
        self._books: dict[int, Codebook] = {}

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Load codebooks written since the last call (by this or another process).

        Raises:
            DamagedCodebook: a new codebook fails its digest or FAISS cannot read it.
        """
        new = [i for (i,) in conn.execute("SELECT id FROM codebooks") if int(i) not in self._books]
        for lo in range(0, len(new), 500):  # only new rows: a codebook's state is ~400 KB
            part = new[lo : lo + 500]
            sql = f"SELECT {_COLUMNS} FROM codebooks WHERE id IN ({','.join('?' * len(part))})"
            for row in conn.execute(sql, part):
                book = Codebook(int(row[0]), str(row[1]), int(row[2]), str(row[3]),
                                bytes(row[4]), bytes(row[5]), float(row[6]))  # fmt: skip
                if not book.intact:  # checked on every load: the runtime cache is by digest
                    raise DamagedCodebook(f"codebook {book.id} ({book.codec}) fails its digest")
                runtime_codec(book)
                self._books[book.id] = book

    def get(self, cid: int) -> Codebook | None:
        """A loaded codebook by id."""
        return self._books.get(cid)

    def find(self, codec: str, dim: int) -> Codebook | None:
        """The codebook of ``codec`` at ``dim``, if loaded."""
        return next((b for b in self._books.values() if b.codec == codec and b.dim == dim), None)

    @property
    def trained(self) -> bool:
        """Whether the store's codec has a codebook (always true for raw codecs)."""
        return not self.spec.trained or any(b.codec == self.spec.name for b in self._books.values())

    def ensure_raw(self, conn: sqlite3.Connection, spec: CodecSpec, dim: int) -> Codebook:
        """Inside a write transaction: the raw codebook of ``spec`` at ``dim``, created on
        first use."""
        book = self.find(spec.name, dim)
        if book is None:
            factory = spec.factory(dim)
            self.add(conn, spec.name, dim, factory, b"", 1.0, 0, "")
            book = self.find(spec.name, dim)
        assert book is not None
        return book

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
    ) -> None:
        """Inside a write transaction: store a codebook and load it."""
        conn.execute(
            "INSERT INTO codebooks(codec, dim, factory, encoder, train_vectors, train_cos, "
            "created, sha256, state) VALUES (?, ?, ?, ?, ?, ?, julianday('now'), ?, ?)",
            (codec, dim, factory, encoder, train_vectors, train_cos,
             Codebook.digest(codec, dim, factory, state), state),
        )  # fmt: skip
        self.refresh(conn)

    def codec_set(self, conn: sqlite3.Connection, dim: int) -> CodecSet:
        """Inside a write transaction: the :class:`CodecSet` for vectors of ``dim``."""
        if not self.spec.trained:
            raw = self.ensure_raw(conn, self.spec, dim)
            return CodecSet(raw, raw, guard=False)
        staging = self.ensure_raw(conn, STAGING, dim)
        trained = self.find(self.spec.name, dim)
        return CodecSet(trained or staging, staging, guard=trained is not None)
