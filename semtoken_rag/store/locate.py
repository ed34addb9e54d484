"""Serving a chunk from the stored document it occurs in: locate, verify every word, decode.

Per chunk, in one read snapshot: its exact key, else alignments ``(document, first word)`` voted
by its winnowed shingle hashes (named documents first; at most :data:`ROWS_PER_HASH` rows per
hash, bounding boilerplate's cost), the best :data:`MAX_VERIFY` checked word by word on blocks
whose checksums verify, so a wrong slice is never served whatever the hashes proposed.  See
docs/store.md, "How a chunk is found".
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, islice

import numpy as np

from semtoken_rag.core.segment import find_words
from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource, fingerprint_key
from semtoken_rag.inputs import check_sources, check_strings, model_text
from semtoken_rag.store.codebooks import Codebook, Codebooks, DamagedCodebook, runtime_codec
from semtoken_rag.store.db import BLOCK_BITS, BLOCK_WORDS, block_range, select_in
from semtoken_rag.store.encoding import block_checksum
from semtoken_rag.store.words import (
    SHINGLE_WORDS,
    WINNOW_WINDOW,
    normalise,
    same_words,
    shingle_hashes,
    unpack,
    winnow,
)
from semtoken_rag.store.writes import check_encoder_id

#: Shingle rows read per hash (bounds the cost of boilerplate shared by many documents).
ROWS_PER_HASH = 64
_DOCS = "SELECT id, key, encoder, n_words, dim, last_used FROM documents WHERE {} IN ({{}})"
_DOCS_BY_ID = _DOCS.format("id")
_BLOCK_START = "SELECT start FROM blocks WHERE id = ?"
#: Alignments verified per chunk and pass before it counts as a miss.
MAX_VERIFY = 8
#: Winnowed shingles looked up first (one the document also kept proposes the alignment; each
#: costs an index read).
FIRST_PASS_SHINGLES = 8


@dataclass(frozen=True)
class ChunkQuery:
    """A chunk to serve: its key, its words (spans into the text and NFKC forms), its source."""

    key: str
    spans: np.ndarray
    words: list[str]
    source: ChunkSource | None = None


def chunk_queries(
    texts: Sequence[str], encoder_id: str, sources: Sequence[ChunkSource | None] | None
) -> list[ChunkQuery]:
    """The :class:`ChunkQuery` of each chunk text (its words as the engine segments them).

    Raises:
        InvalidInputError: texts that are not a sequence of strings (one string is refused),
            sources of another length, an encoder id that is not a non-empty string.
    """
    texts = check_strings(texts, "texts")
    sources = check_sources(sources, len(texts))
    check_encoder_id(encoder_id)
    out = []
    for text, source in zip(texts, sources or [None] * len(texts), strict=True):
        clean = model_text(text)
        spans = find_words(clean)
        words = list(map(clean.__getitem__, map(slice, spans[:, 0].tolist(), spans[:, 1].tolist())))
        if not unicodedata.is_normalized("NFKC", clean):
            words = normalise(words)
        out.append(ChunkQuery(fingerprint_key(text, encoder_id), spans, words, source))
    return out


@dataclass(frozen=True)
class _Doc:
    id: int
    key: str
    encoder: int
    n_words: int
    dim: int
    last_used: float


@dataclass(frozen=True)
class _Block:
    start: int
    book: Codebook
    codes: np.ndarray
    words: list[str]


@dataclass(frozen=True)
class _Match:
    """A verified alignment: the blocks holding the chunk, its first word's index in the first,
    and whether its edge words are whole (not fragments of the stored ones)."""

    doc: int
    blocks: list[_Block]
    lo: int
    whole: bool


@dataclass
class Lookup:
    """What one lookup found: per chunk its fingerprints or ``None`` (a miss), documents served
    -> their stored LRU time (for the touch buffer), documents failing a checksum (to remove)."""

    found: list[ChunkFingerprints | None] = field(default_factory=list)
    served: dict[int, float] = field(default_factory=dict)
    damaged: set[int] = field(default_factory=set)


class Locator:
    """One lookup's reads (inside a read transaction, under the store's lock); ``encoder`` is
    the asking encoder's row id in ``encoders`` (other encoders' documents are never served)."""

    def __init__(self, conn: sqlite3.Connection, books: Codebooks, encoder: int) -> None:
        self.conn = conn
        self.books = books
        self.encoder = encoder
        self.result = Lookup()
        self._docs: dict[int, _Doc] = {}
        self._rows: dict[tuple[int, int | None], list[tuple[int, int]]] = {}
        self._blocks: dict[int, _Block | None] = {}
        self._starts: dict[int, int | None] = {}
        self._lengths: dict[int, list[int]] = {}

    def run(self, queries: Sequence[ChunkQuery]) -> Lookup:
        """Serve each chunk (see the module docstring)."""
        by_key = self._load_docs(_DOCS.format("key"), list({q.key for q in queries}))
        keyed = {d.key: d for d in by_key}
        for q in queries:
            doc = keyed.get(q.key)  # checked as every candidate is: a short one is no damage
            exact = [(doc.id, 0)] if doc is not None and self._fits(doc.id, 0, len(q.words)) else []
            fp = self._serve(q, exact) if exact else None
            if fp is None:
                fp = self._search(q)
            self.result.found.append(fp)
        return self.result

    # -- candidates ---------------------------------------------------------------------
    def _search(self, q: ChunkQuery) -> ChunkFingerprints | None:
        """Named documents first, then all; the winnowed shingles first, then every shingle
        of the chunk (more votes where text repeats; only a chunk not found pays for it).

        A one-word chunk is a miss (docs/store.md): one word verifies nothing about where it
        was cut from, so any copy of it, or of a word holding it, would pass.
        """
        if len(q.words) < 2:
            return None
        named = self._named(q.source.document) if q.source and q.source.document else []
        if named and q.source is not None and q.source.start is not None:
            fp = self._serve(q, self._near_start(q, named, q.source.start))
            if fp is not None:  # a short chunk may hold no kept shingle: its position does
                return fp
        for within in ([*named], None) if named else (None,):
            for every in (False, True):
                fp = self._serve(q, self._candidates(q, within, every))
                if fp is not None:
                    return fp
        return None

    def _near_start(self, q: ChunkQuery, docs: list[int], start: int) -> list[tuple[int, int]]:
        """Alignments where the chunk begins near character ``start`` of a named document: the
        block holding ``start`` and its neighbours are scanned for the chunk's second word (the
        first may be a cut fragment)."""
        self._load_docs(_DOCS_BY_ID, [d for d in docs if d not in self._docs])
        anchor = q.words[1]
        out = []
        for doc in docs:
            index = self._block_at(doc, start) if doc in self._docs else None
            if index is None:
                continue
            for b in range(max(index - 1, 0), index + 2):
                block = self._block(doc, b) if b * BLOCK_WORDS < self._docs[doc].n_words else None
                for i, w in enumerate(block.words if block is not None else []):
                    if w == anchor:
                        out.append((doc, b * BLOCK_WORDS + i - 1))
        return [(d, o) for d, o in out if self._fits(d, o, len(q.words))]

    def _block_at(self, doc: int, start: int) -> int | None:
        """Index of the last block of ``doc`` starting at or before character ``start``
        (``None``: none does, or a row is missing), by binary search (``start`` has no index)."""
        first, last = 0, (self._docs[doc].n_words - 1) // BLOCK_WORDS
        found = None
        while first <= last:
            mid = (first + last) // 2
            row = self._start_of(block_range(doc)[0] + mid)
            if row is None:
                return None
            if row <= start:
                found, first = mid, mid + 1
            else:
                last = mid - 1
        return found

    def _start_of(self, bid: int) -> int | None:
        """Character start of block row ``bid`` (``None`` when there is no such row), read
        alone: the row's codes and words are read only for the blocks a chunk covers."""
        if bid not in self._starts:
            row = self.conn.execute(_BLOCK_START, (bid,)).fetchone()
            self._starts[bid] = None if row is None else int(row[0])
        return self._starts[bid]

    def _fits(self, doc: int, off: int, n: int) -> bool:
        d = self._docs.get(doc)
        return d is not None and d.encoder == self.encoder and 0 <= off <= d.n_words - n

    def _named(self, name: str) -> list[int]:
        rows = self.conn.execute("SELECT document FROM names WHERE name = ? LIMIT 64", (name,))
        return [int(r[0]) for r in rows]

    def _candidates(
        self, q: ChunkQuery, within: list[int] | None, every: bool
    ) -> list[tuple[int, int]]:
        """Alignments ``(document, first word)`` ranked by the votes of the chunk's shingles.

        A shingle found in ``r`` places votes ``1/r`` for each: the chunk's rare shingles (its
        own text) outweigh boilerplate it shares with many documents.  Ties go to the newest
        document: of an edited file ingested again, the current version.
        """
        hashes = shingle_hashes(q.words)
        short = len(q.words) < WINNOW_WINDOW + SHINGLE_WORDS - 1
        picks = np.arange(len(hashes)) if short or every else _interior(winnow(hashes))
        votes: dict[tuple[int, int], float] = defaultdict(float)
        scope = set(within) if within else None
        for pos in picks.tolist():
            for rows in self._scoped_rows(int(hashes[pos]), within, scope):
                for doc, word in rows:
                    votes[(doc, word - pos)] += 1.0 / len(rows)
        self._load_docs(_DOCS_BY_ID, [d for d, _ in votes if d not in self._docs])
        ranked = sorted(votes.items(), key=lambda kv: (-kv[1], -kv[0][0], kv[0][1]))
        return [(d, o) for (d, o), _ in ranked if self._fits(d, o, len(q.words))][:MAX_VERIFY]

    def _scoped_rows(
        self, h: int, within: list[int] | None, scope: set[int] | None
    ) -> list[list[tuple[int, int]]]:
        """The rows of hash ``h``: all of them, or those of each document ``within`` (one list
        per document, each weighting its own votes).

        A name can hold hundreds of documents, so the named documents' rows are picked from
        one query of all the hash's rows (reused by the unscoped search); only a hash with too
        many rows (boilerplate) is queried per named document.
        """
        rows = self._shingle_rows(h, None)
        if within is None or scope is None:
            return [rows]
        if len(rows) >= ROWS_PER_HASH:
            return [self._shingle_rows(h, doc) for doc in within]
        by_doc: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for row in rows:
            if row[0] in scope:
                by_doc[row[0]].append(row)
        return list(by_doc.values())

    def _shingle_rows(self, h: int, doc: int | None) -> list[tuple[int, int]]:
        key = (h, doc)
        if key not in self._rows:
            where, args = ("", (h,)) if doc is None else ("AND document = ? ", (h, doc))
            sql = f"SELECT document, word FROM shingles WHERE hash = ? {where}LIMIT ?"
            rows = self.conn.execute(sql, (*args, ROWS_PER_HASH))
            self._rows[key] = [(int(a), int(b)) for a, b in rows]
        return self._rows[key]

    def _load_docs(self, sql: str, values: list[object]) -> list[_Doc]:
        out = [_Doc(int(i), str(k), int(e), int(n), int(d), float(t))
               for i, k, e, n, d, t in select_in(self.conn, sql, values)]  # fmt: skip
        self._docs.update((d.id, d) for d in out)
        return out

    # -- verification -------------------------------------------------------------------
    def _serve(self, q: ChunkQuery, cands: list[tuple[int, int]]) -> ChunkFingerprints | None:
        """The first candidate whose words match the chunk's whole, else the first where its edge
        words are fragments of the stored ones (an edited document's new version is served over
        the old one holding the chunk's text inside longer words; at most :data:`MAX_VERIFY`
        more are tried for a whole match).  With a start hint, candidates are tried nearest
        first, the newest document first at the same distance (not all verified and compared:
        a text repeated all over a block proposes hundreds of copies near the hint)."""
        want = q.source.start if q.source is not None else None
        if want is not None and len(cands) > 1:
            cands = sorted(cands, key=lambda c: (self._distance(c[0], c[1], want), -c[0]))
        best: _Match | None = None
        budget = MAX_VERIFY  # candidates tried for a whole match once a fragment one is found
        for doc, off in cands:
            match = self._matched(doc, off, q)
            if match is not None and (best is None or match.whole):
                best = match
                if match.whole:
                    break
            elif best is not None and (budget := budget - 1) == 0:
                break
        if best is None:
            return None
        self.result.served[best.doc] = self._docs[best.doc].last_used
        return self._decoded(best, q)

    def _distance(self, doc: int, off: int, want: int) -> float:
        """Characters between ``want`` and the estimated start of word ``off`` of ``doc``
        (infinite when its block does not verify: that candidate cannot be served)."""
        index, lo = divmod(off, BLOCK_WORDS)
        block = self._block(doc, index)
        if block is None:
            return float("inf")
        return float(abs(block.start + self._offset_in_block(doc, index, block, lo) - want))

    def _matched(self, doc: int, off: int, q: ChunkQuery) -> _Match | None:
        """Words ``off ...`` of ``doc`` when every one verifies (``None`` otherwise)."""
        n = len(q.words)
        if n == 0:  # a text without words, stored as such (found by its key)
            return _Match(doc, [], 0, True) if self._docs[doc].n_words == 0 else None
        first, last = off // BLOCK_WORDS, (off + n - 1) // BLOCK_WORDS
        blocks = [self._block(doc, b) for b in range(first, last + 1)]
        parts = [b for b in blocks if b is not None]
        if len(parts) < len(blocks):
            return None
        lo = off - first * BLOCK_WORDS
        stored = list(islice(chain.from_iterable(b.words for b in parts), lo, lo + n))
        if not same_words(stored, q.words):
            return None
        return _Match(doc, parts, lo, stored == q.words)

    def _decoded(self, match: _Match, q: ChunkQuery) -> ChunkFingerprints:
        """The chunk's vectors from a verified match."""
        n, lo = len(q.words), match.lo
        if n == 0:
            return ChunkFingerprints(np.zeros((0, self._docs[match.doc].dim), np.float32), q.spans)
        vectors = [
            runtime_codec(b.book).decode(b.codes[lo if i == 0 else 0 : lo + n - i * BLOCK_WORDS])
            for i, b in enumerate(match.blocks)
        ]
        return ChunkFingerprints(np.concatenate(vectors), q.spans)

    def _offset_in_block(self, doc: int, index: int, block: _Block, lo: int) -> int:
        """Approximate characters from block ``index``'s start to its word ``lo``: only block
        starts are stored, so the word lengths are scaled to end where the next block starts
        (whitespace spread evenly); enough to tell copies of a passage apart.  Cumulative
        lengths are cached per block."""
        bid = block_range(doc)[0] + index
        if bid not in self._lengths:
            self._lengths[bid] = list(accumulate((len(w) + 1 for w in block.words), initial=0))
        lengths = self._lengths[bid]
        end = self._start_of(bid + 1)
        if end is None:  # the last block: no end to scale to
            return lengths[lo]
        return round(lengths[lo] * (end - block.start) / max(lengths[-1], 1))

    def _block(self, doc: int, index: int) -> _Block | None:
        bid = block_range(doc)[0] + index
        if bid not in self._blocks:
            self._blocks[bid] = self._read_block(doc, bid)
        return self._blocks[bid]

    def _read_block(self, doc: int, bid: int) -> _Block | None:
        row = self.conn.execute(
            "SELECT start, codebook, n_words, checksum, codes, words FROM blocks WHERE id = ?",
            (bid,),
        ).fetchone()
        d = self._docs[doc]
        if row is None:
            self.result.damaged.add(doc)
            return None
        start, cid, n, csum, codes, words = row
        book = self.books.by_id.get(int(cid))
        if book is None:
            self.books.refresh(self.conn)
            book = self.books.by_id.get(int(cid))
        index = bid & ((1 << BLOCK_BITS) - 1)
        try:
            if book is None or book.dim != d.dim:
                raise ValueError("unknown codebook")
            digest = block_checksum(d.key, index, n, d.dim, book.sha256, codes, words)
            if digest != csum:
                raise ValueError("checksum mismatch")
            size = runtime_codec(book).code_size
            array = np.frombuffer(codes, np.uint8).reshape(n, size)
            return _Block(int(start), book, array, unpack(words, n))
        except (ValueError, DamagedCodebook):
            self.result.damaged.add(doc)
            return None


def _interior(picks: np.ndarray) -> np.ndarray:
    """At most :data:`FIRST_PASS_SHINGLES` of ``picks``, evenly spread, the two ends left out
    (a chunk's edge shingles are the ones its document may not have kept)."""
    if len(picks) <= FIRST_PASS_SHINGLES:
        return picks
    at = np.linspace(0, len(picks) - 1, FIRST_PASS_SHINGLES + 2)[1:-1]
    return np.unique(picks[at.round().astype(np.int64)])
