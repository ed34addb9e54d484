"""The ``rag`` mode: one chunk pool over all contexts of a run, FAISS retrieval per question.

Why a shared pool: a real retriever returns chunks of *other* documents too (distractors) and
overlapping windows of the same document (redundancy); compressing what a retriever returned is
the job SemToken is for.  Chunks are word windows (120 words, 60 overlap by default, as in the
prototype of DESIGN.md), embedded with MiniLM and searched exactly (``IndexFlatIP`` on
L2-normalised vectors = cosine).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from semtoken_rag import optional
from semtoken_rag.core.segment import find_words

logger = logging.getLogger(__name__)


def chunk_words(text: str, size: int = 120, overlap: int = 60) -> list[str]:
    """Overlapping windows of ``size`` words, stepping ``size - overlap`` words (verbatim text)."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError("need size > 0 and 0 <= overlap < size")
    ws = find_words(text)
    n = len(ws)
    if n == 0:
        return []
    step = size - overlap
    out = []
    for a in range(0, n, step):
        b = min(a + size, n)
        out.append(text[ws[a, 0] : ws[b - 1, 1]])
        if b == n:
            break
    return out


@dataclass
class ChunkPool:
    """All chunks of a run and their FAISS index.

    Attributes:
        chunks: Unique chunk texts, in pool order.
        doc_of: ``(n_chunks,)`` index of the first document each chunk came from.
        index: A ``faiss.IndexFlatIP`` over the chunk embeddings.
        model: The sentence-transformers model used for chunks and questions.
    """

    chunks: list[str]
    doc_of: np.ndarray
    index: Any
    model: Any

    @classmethod
    def build(
        cls, documents: Sequence[str], model: Any, *, size: int = 120, overlap: int = 60
    ) -> ChunkPool:
        """Chunk every distinct document, embed and index the chunks."""
        faiss = optional.faiss("the rag evaluation mode")

        seen: dict[str, int] = {}
        doc_of: list[int] = []
        for d, doc in enumerate(dict.fromkeys(documents)):
            for c in chunk_words(doc, size, overlap):
                if c not in seen:
                    seen[c] = len(seen)
                    doc_of.append(d)
        chunks = list(seen)
        vecs = np.asarray(
            model.encode(chunks, normalize_embeddings=True, batch_size=64), dtype=np.float32
        )
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        logger.info("rag pool: %d chunks from %d documents", len(chunks), len(set(doc_of)))
        return cls(chunks, np.asarray(doc_of, dtype=np.int64), index, model)

    def retrieve(self, question: str, k: int) -> list[str]:
        """Top-``k`` chunks for ``question``, best first."""
        q = np.asarray(self.model.encode([question], normalize_embeddings=True), dtype=np.float32)
        _, idx = self.index.search(q, min(k, len(self.chunks)))
        return [self.chunks[i] for i in idx[0] if i >= 0]
