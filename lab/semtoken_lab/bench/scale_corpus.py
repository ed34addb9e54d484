"""The corpus of ``semtoken-rag bench --store-scale``: any number of chunk-sized documents with
real texts and real codes, made without one encoder or PQ pass per document.

* **Texts**: the distinct real chunks of ``shared/data`` (256 words, overlap 32, as ``ingest``
  cuts them), recycled in a seeded order; document ``i`` replaces its chunk's first word with a
  unique marker word (``#i``), so every key differs while the words (what the store keeps
  beside the codes) stay real.  Each distinct chunk's shingles then occur in about
  ``N / chunks`` documents: sliced lookups meet that duplication (bounded by the locator's
  ``ROWS_PER_HASH``), which a corpus of distinct texts would not have.  With ``distinct``,
  copy ``k >= 1`` of a chunk also appends ``~k`` to every fourth word, so every shingle of a
  copy is its own (about 0.6 more characters per word; token counts stay the chunk's).
* **Codes**: a slice of the codes of a pool of real MiniLM fingerprints encoded once with the
  store's trained codebook, as many rows as the text has words.  The writer receives
  ``EncodedDocument`` objects exactly as ``encode_documents`` builds them (the library's
  ``encode_blocks``, ``shingle_hashes`` and ``winnow`` on the document's NFKC words, checksums
  bound to its key): only the PQ assignment is skipped, so the largest N measures the writer
  and the lookups, not N PQ encodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

#: Longest word that gets a copy tag (``find_words`` hard-wraps words at 64 characters).
_TAG_MAX_WORD = 56


@dataclass
class ScaleCorpus:
    """The recipe of the corpus (see the module docstring), saved in the work folder.

    Attributes:
        chunks: Distinct real chunk texts.
        tokens: Encoder tokens of each chunk.
        codes: ``(P, code_size) uint8`` codes of the pool's real fingerprints.
        codecs: The trained store's ``CodecSet`` (the codes' codebook).
        encoder: ``cache_id`` of the encoder.
        seed: Order of the recycled chunks and of the code slices.
        distinct: Tag the words of recycled copies (every shingle distinct).
    """

    chunks: list[str]
    tokens: np.ndarray
    codes: np.ndarray
    codecs: Any
    encoder: str
    seed: int = 0
    distinct: bool = False

    def save(self, work: Path) -> None:
        """Write the recipe into ``work`` (read back by :meth:`load` in child processes)."""
        (work / "chunks.json").write_text(json.dumps(self.chunks), encoding="utf-8")
        np.save(work / "tokens.npy", self.tokens)
        np.save(work / "pool_codes.npy", self.codes)
        meta = {"encoder": self.encoder, "seed": self.seed, "distinct": self.distinct,
                "dim": self.codecs.book.dim}  # fmt: skip
        (work / "corpus.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, work: Path) -> ScaleCorpus:
        """The recipe :meth:`save` wrote; the codebooks from the trained template store
        (``work/template``) that every measured store copies."""
        from semtoken_rag.store import FingerprintStore

        meta = json.loads((work / "corpus.json").read_text(encoding="utf-8"))
        with FingerprintStore(work / "template") as template:
            codecs = template.codec_set(int(meta["dim"]))
        return cls(
            chunks=json.loads((work / "chunks.json").read_text(encoding="utf-8")),
            tokens=np.load(work / "tokens.npy"),
            codes=np.load(work / "pool_codes.npy"),
            codecs=codecs,
            encoder=str(meta["encoder"]),
            seed=int(meta["seed"]),
            distinct=bool(meta.get("distinct", False)),
        )

    @cached_property
    def _order(self) -> np.ndarray:
        return np.random.default_rng(self.seed).permutation(len(self.chunks))

    def chunk_of(self, i: int) -> int:
        """Index of the real chunk document ``i`` recycles."""
        return int(self._order[i % len(self.chunks)])

    def _chunk(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Word spans (int32) and shingle hashes of chunk ``c`` (cached: about 3 KB each)."""
        got = self._cache.get(c)
        if got is None:
            from semtoken_rag.core.segment import find_words
            from semtoken_rag.store.words import normalise, shingle_hashes

            text = self.chunks[c]
            spans = find_words(text)
            words = normalise([text[s:e] for s, e in spans.tolist()])
            got = self._cache[c] = (spans.astype(np.int32), shingle_hashes(words))
        return got

    @cached_property
    def _cache(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {}

    def text(self, i: int) -> str:
        """Document ``i`` (see :meth:`_layout`)."""
        return self._layout(i)[0]

    def _layout(self, i: int) -> tuple[str, np.ndarray]:
        """Text and word spans of document ``i``: its chunk with the first word replaced by
        the marker ``#i``; with ``distinct``, copy ``k >= 1`` of a chunk also appends ``~k`` to
        every fourth word (2, 6, 10, ...), so every shingle differs from the other copies'
        (not to words a tag would make longer than a segmenter's word, or to CJK, which the
        segmenter would split: the spans must stay those of ``find_words``)."""
        c = self.chunk_of(i)
        chunk, spans0 = self.chunks[c], self._chunk(c)[0]
        marker, first_end = f"#{i}", int(spans0[0, 1])
        text = marker + chunk[first_end:]
        spans = spans0.astype(np.int64) + (len(marker) - first_end)
        spans[0] = (0, len(marker))
        k = i // len(self.chunks)
        if not self.distinct or k == 0:
            return text, spans
        tag = f"~{k}"
        p = np.arange(len(spans))
        tagged = (p % 4 == 2) & (spans[:, 1] - spans[:, 0] <= _TAG_MAX_WORD)
        tagged &= np.array([text[a:b].isascii() for a, b in spans.tolist()])  # no CJK split
        before = np.concatenate([[0], np.cumsum(tagged)[:-1]])
        pieces, prev = [], 0
        for end in spans[tagged, 1].tolist():
            pieces += [text[prev:end], tag]
            prev = end
        pieces.append(text[prev:])
        spans[:, 0] += len(tag) * before
        spans[:, 1] += len(tag) * (before + tagged)
        return "".join(pieces), spans

    def tokens_of(self, i: int) -> int:
        """Encoder tokens of document ``i`` (its chunk's; the marker is within a few)."""
        return int(self.tokens[self.chunk_of(i)])

    def key(self, i: int) -> str:
        """Store key of document ``i``."""
        from semtoken_rag.fingerprints import fingerprint_key

        return fingerprint_key(self.text(i), self.encoder)

    def _words(self, i: int) -> tuple[str, np.ndarray, list[str], np.ndarray]:
        """Text, word spans, NFKC words and shingle hashes of document ``i`` (a recycled
        chunk's hashes with those the marker changes recomputed: identical to computing them
        afresh)."""
        from semtoken_rag.store.words import SHINGLE_WORDS, normalise, shingle_hashes

        text, spans = self._layout(i)
        words = normalise([text[s:e] for s, e in spans.tolist()])
        if self.distinct and i >= len(self.chunks):
            return text, spans, words, shingle_hashes(words)
        hashes = self._chunk(self.chunk_of(i))[1].copy()
        head = shingle_hashes(words[: 2 * SHINGLE_WORDS - 1])
        hashes[: len(head)] = head
        return text, spans, words, hashes

    def document(self, i: int) -> Any:
        """Document ``i`` as the writer receives it (an ``EncodedDocument``)."""
        from semtoken_rag.fingerprints import fingerprint_key
        from semtoken_rag.store import EncodedDocument
        from semtoken_rag.store.db import BLOCK_WORDS
        from semtoken_rag.store.encoding import encode_blocks
        from semtoken_rag.store.words import winnow

        text, spans, words, hashes = self._words(i)
        key = fingerprint_key(text, self.encoder)
        n, dim = len(words), self.codecs.book.dim
        lo = (i * 104729) % (len(self.codes) - n + 1)
        # encode_blocks reads the vectors only for the fidelity guard (off: cos=None).
        shape_only = np.broadcast_to(np.zeros((1, dim), np.float32), (n, dim))
        starts = spans[::BLOCK_WORDS, 0].tolist()
        blocks = encode_blocks(key, shape_only, words, self.codes[lo : lo + n], None,
                               self.codecs, starts)  # fmt: skip
        picks = winnow(hashes)
        return EncodedDocument(key, self.encoder, n, dim, blocks, self.codecs.digests,
                               hashes[picks], picks.astype(np.int32))  # fmt: skip

    def documents(self, lo: int, hi: int) -> list[Any]:
        """Documents ``lo .. hi - 1``."""
        return [self.document(i) for i in range(lo, hi)]

    def sliced(self, i: int, rng: np.random.Generator) -> str:
        """A chunk cut from document ``i`` with other boundaries: its first 10-30 and last
        10-30 words dropped (a retriever's splitter that cut elsewhere)."""
        text, spans = self._layout(i)
        n = len(spans)
        a, b = (min(int(x), n // 4) for x in rng.integers(10, 31, size=2))
        return text[int(spans[a, 0]) : int(spans[n - b - 1, 1])]
