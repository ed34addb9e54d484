"""The in-memory search index of a store: the stored *codes*, searched exactly after decoding.

Why not a FAISS index file any more: format 1 persisted a flat float32 copy of every word vector
(doubling the store) although the compressor never searches the store.  Now nothing is built
until :meth:`FingerprintStore.search` is called; the index then holds the codes as stored (the
codec's bytes: 64 per word with ``pq64``, no float32 copy), grouped by codebook, and a search
decodes them block by block (:data:`BLOCK` vectors at a time) and takes the exact top-k inner
products of the decoded vectors, which are exactly the vectors :meth:`get_many` returns.  Cost:
one decode of every stored vector per call (O(N·d)); memory: the codes plus one block.

The index records the database ``token`` of the state it reflects and is brought up to date
incrementally (rows of higher id) unless the deletion counter moved (then it is rebuilt).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from semtoken_rag.store.codebooks import Codebooks
from semtoken_rag.store.gpu import knn_inner_product

#: Vectors decoded at once during a search (bounds the float32 working memory to ~25 MB).
BLOCK = 16384


@dataclass
class _Group:
    """Codes of the entries encoded with one codebook."""

    code_size: int
    codes: bytearray = field(default_factory=bytearray)
    entry_ids: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    n: int = 0


@dataclass
class CodeIndex:
    """Codes of every stored word vector of one dimension (see the module docstring).

    Attributes:
        dim: Vector dimension.
        token: Database token of the state this index reflects.
        deletions: The database's deletion counter at that state (detects evictions).
        max_entry_id: Largest entry id included (entries are appended in id order).
    """

    dim: int
    token: str = ""
    deletions: int = 0
    max_entry_id: int = 0
    groups: dict[int, _Group] = field(default_factory=dict)

    @property
    def ntotal(self) -> int:
        return sum(g.n for g in self.groups.values())

    @property
    def nbytes(self) -> int:
        return sum(len(g.codes) + 16 * len(g.entry_ids) for g in self.groups.values())

    def add(self, entry_id: int, codebook: int, code_size: int, n_words: int, codes: bytes) -> None:
        """Append one entry's codes (``n_words * code_size`` bytes of codebook ``codebook``)."""
        g = self.groups.setdefault(codebook, _Group(code_size))
        if n_words:
            g.entry_ids.append(entry_id)
            g.starts.append(g.n)
            g.codes.extend(codes)
            g.n += n_words
        self.max_entry_id = max(self.max_entry_id, entry_id)

    def search(
        self, queries: np.ndarray, k: int, books: Codebooks, *, on_gpu: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact top-``k`` inner products over the decoded vectors.

        Returns:
            ``(scores (q, k) float32, entry ids (q, k) int64, word index (q, k) int64)``;
            ``-inf`` / ``-1`` where fewer than ``k`` vectors exist.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        cand_s: list[np.ndarray] = [np.full((len(q), 0), -np.inf, np.float32)]
        cand_e: list[np.ndarray] = [np.zeros((len(q), 0), np.int64)]
        cand_w: list[np.ndarray] = [np.zeros((len(q), 0), np.int64)]
        for cid, g in self.groups.items():
            codec = books.codec(cid)
            if codec is None or g.n == 0:
                continue
            starts = np.asarray(g.starts, np.int64)
            entries = np.asarray(g.entry_ids, np.int64)
            codes = np.frombuffer(g.codes, dtype=np.uint8).reshape(g.n, g.code_size)
            for lo in range(0, g.n, BLOCK):
                block = codec.decode(codes[lo : lo + BLOCK])
                kk = min(k, len(block))
                scores, ids = knn_inner_product(q, block, kk, on_gpu=on_gpu)
                pos = np.where(ids >= 0, ids + lo, 0)
                owner = np.searchsorted(starts, pos, side="right") - 1
                cand_s.append(np.where(ids >= 0, scores, -np.inf).astype(np.float32))
                cand_e.append(np.where(ids >= 0, entries[owner], -1))
                cand_w.append(np.where(ids >= 0, pos - starts[owner], -1))
            del codes  # release the view so the bytearray can grow again
        s, e, w = (np.concatenate(c, axis=1) for c in (cand_s, cand_e, cand_w))
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        s, e, w = (np.take_along_axis(a, order, axis=1) for a in (s, e, w))
        if s.shape[1] < k:  # fewer vectors than k: pad like FAISS does
            pad = k - s.shape[1]
            s = np.pad(s, ((0, 0), (0, pad)), constant_values=-np.inf)
            e = np.pad(e, ((0, 0), (0, pad)), constant_values=-1)
            w = np.pad(w, ((0, 0), (0, pad)), constant_values=-1)
        return s, e, w
