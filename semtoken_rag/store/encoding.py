"""A document's fingerprints as the store keeps them, made wherever the encoder ran.

:func:`encode_documents` runs where the document was encoded (the engine, the ingestion loop,
a Ray actor), so the writer receives codes (64 bytes per word with ``pq64``) and only writes;
one function everywhere makes a document's rows bit-identical whichever path wrote them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.pooling import unit_rows
from semtoken_rag.errors import InvalidInputError, NonFiniteFingerprintsError
from semtoken_rag.fingerprints import REAL_KINDS, ChunkFingerprints
from semtoken_rag.inputs import model_text
from semtoken_rag.store.codebooks import GUARD_MARGIN, Codebook, CodecSet, runtime_codec
from semtoken_rag.store.db import BLOCK_WORDS, MAX_DOCUMENT_WORDS
from semtoken_rag.store.words import normalise, pack, shingle_hashes, winnow


@dataclass(frozen=True)
class EncodedBlock:
    """Words ``[index * BLOCK_WORDS, ...)`` of a document, encoded: ``start`` is the character
    offset of its first word, ``codes`` ``n_words * code_size`` bytes, ``words`` its packed NFKC
    words, ``checksum`` their :func:`block_checksum`."""

    index: int
    start: int
    codebook: int
    n_words: int
    checksum: bytes
    codes: bytes
    words: bytes


@dataclass(frozen=True, eq=False)
class EncodedDocument:
    """Everything the store writes for one document.

    Attributes:
        key: :func:`~semtoken_rag.fingerprints.fingerprint_key` of the text.
        encoder: ``cache_id`` of the encoder.
        n_words: Words of the document (of ``dim``-dimensional vectors).
        blocks: The encoded blocks, in order.
        digests: Codebook id -> digest of the codebooks used (checked by the writer).
        shingles: ``(m,) int32`` winnowed shingle hashes.
        positions: ``(m,) int32`` first word of each of those shingles.
        names: Names the document is known by (a file path, a framework's document id).
    """

    key: str
    encoder: str
    n_words: int
    dim: int
    blocks: tuple[EncodedBlock, ...]
    digests: dict[int, bytes]
    shingles: np.ndarray
    positions: np.ndarray
    names: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        """Payload bytes (codes and words): what ``max_bytes`` limits."""
        return sum(len(b.codes) + len(b.words) for b in self.blocks)


def block_checksum(
    key: str, index: int, n_words: int, dim: int, book: bytes, codes: bytes, words: bytes
) -> bytes:
    """Digest binding a block to its document, position, shape, codebook and bytes."""
    h = hashlib.sha256(f"{key}\0{index}\0{n_words}\0{dim}\0".encode("utf-8", "surrogatepass"))
    for part in (book, codes, words):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


@dataclass(frozen=True, eq=False)
class DocumentFingerprints:
    """A document to encode for the store: its key, text, fingerprints and names."""

    key: str
    text: str
    fingerprints: ChunkFingerprints
    names: tuple[str, ...] = ()


def check_document(doc: DocumentFingerprints) -> None:
    """Refuse fingerprints the store must never hold.

    Raises:
        NonFiniteFingerprintsError: a vector holds NaN or infinity.
        InvalidInputError: the document is larger than a store document can be, or its
            vectors are not real numbers or its word spans not integers.
    """
    fp = doc.fingerprints
    if fp.vectors.dtype.kind not in REAL_KINDS or fp.word_spans.dtype.kind not in "iu":
        raise InvalidInputError(  # else a TypeError from numpy, or complex parts dropped
            f"fingerprints of document {doc.key[:12]}… must be real vectors with integer word "
            f"spans, got {fp.vectors.dtype} vectors and {fp.word_spans.dtype} spans"
        )
    if not np.isfinite(fp.vectors).all():
        raise NonFiniteFingerprintsError(
            f"the encoder produced non-finite fingerprints for document {doc.key[:12]}…; "
            "they are not stored"
        )
    if fp.n_words > MAX_DOCUMENT_WORDS:
        raise InvalidInputError(
            f"a document of {fp.n_words} words exceeds the store's {MAX_DOCUMENT_WORDS}; "
            "split it first"
        )


def encode_blocks(
    key: str, vectors: np.ndarray, words: Sequence[str], codes: np.ndarray,
    cos: np.ndarray | None, codecs: CodecSet, starts: Sequence[int], first: int = 0,
) -> tuple[EncodedBlock, ...]:  # fmt: skip
    """A document's blocks from ``(n, code_size) uint8`` ``codes`` of its ``(n, dim) float32``
    ``vectors`` made with ``codecs.book``; ``words`` are its ``n`` NFKC words, ``starts`` each
    block's first character, ``first`` the first block's number (training re-encodes one block).
    ``cos``: ``(n,)`` decoded cosines when the guard applies; a block whose mean is more than
    :data:`GUARD_MARGIN` below the codebook's training cosine is re-encoded in float16.
    """
    out = []
    dim = int(vectors.shape[1])
    for index, lo in enumerate(range(0, len(words), BLOCK_WORDS), start=first):
        hi = min(lo + BLOCK_WORDS, len(words))
        book: Codebook = codecs.book
        raw = codes[lo:hi]
        if cos is not None and float(cos[lo:hi].mean()) < book.train_cos - GUARD_MARGIN:
            book = codecs.staging
            raw = runtime_codec(book).encode(vectors[lo:hi])
        packed = pack(words[lo:hi])
        data = raw.tobytes()
        digest = block_checksum(key, index, hi - lo, dim, book.sha256, data, packed)
        start = starts[index - first]
        out.append(EncodedBlock(index, start, book.id, hi - lo, digest, data, packed))
    return tuple(out)


def code_vectors(vectors: np.ndarray, codecs: CodecSet) -> tuple[np.ndarray, np.ndarray | None]:
    """``(codes, cosines or None)`` of ``(n, dim)`` vectors with ``codecs.book``: one encode
    (and, for the guard, one decode) for a whole batch, which is where the time goes."""
    codec = runtime_codec(codecs.book)
    if not codecs.guard:
        return codec.encode(vectors), None
    return codec.encode_with_cosines(vectors)


def encode_documents(
    docs: Sequence[DocumentFingerprints], codecs: CodecSet, *, encoder: str
) -> list[EncodedDocument]:
    """Encode documents for the store, all their vectors in one codec call; ``encoder`` is the
    encoder's ``cache_id``.

    Every document is checked here (the writer's entry point, whoever calls it) and its vectors
    are stored L2-normalised, as the engine uses them.  Stored words are those of
    :func:`~semtoken_rag.inputs.model_text` (lone surrogates as U+FFFD, same offsets): what a
    lookup compares them with.

    Raises:
        NonFiniteFingerprintsError: a vector holds NaN or infinity.
        InvalidInputError: a document too large, or of another dimension than ``codecs``.
    """
    if not docs:
        return []
    for d in docs:
        check_document(d)
        if d.fingerprints.dim != codecs.book.dim:
            raise InvalidInputError(
                f"document {d.key[:12]}… has {d.fingerprints.dim}-dimensional fingerprints, "
                f"but the codec set is for dimension {codecs.book.dim}: encode it with "
                f"codec_set({d.fingerprints.dim})"
            )
    # normalised as the engine uses them, per document: its rows do not depend on the batch
    units = [unit_rows(np.asarray(d.fingerprints.vectors)) for d in docs]
    vectors = np.concatenate(units).reshape(-1, codecs.book.dim)
    codes, cos = code_vectors(vectors, codecs)
    out = []
    lo = 0
    for d in docs:
        fp = d.fingerprints
        hi = lo + fp.n_words
        text = model_text(d.text)
        words = normalise([text[s:e] for s, e in fp.word_spans.tolist()])
        starts = fp.word_spans[::BLOCK_WORDS, 0].tolist()
        blocks = encode_blocks(
            d.key, vectors[lo:hi], words, codes[lo:hi], None if cos is None else cos[lo:hi],
            codecs, starts,
        )  # fmt: skip
        hashes = shingle_hashes(words)
        picks = winnow(hashes)
        out.append(
            EncodedDocument(d.key, encoder, fp.n_words, fp.dim, blocks, codecs.digests,
                            hashes[picks], picks.astype(np.int32), tuple(dict.fromkeys(d.names)))
        )  # fmt: skip
        lo = hi
    return out


def encode_by_dim(
    docs: Sequence[DocumentFingerprints],
    codec_set: Callable[[int], CodecSet],
    *,
    encoder: str,
) -> list[EncodedDocument]:
    """:func:`encode_documents` for documents of any dimensions (one codec call per
    dimension), in input order; ``codec_set(dim)`` gives the store's codebooks."""
    out: dict[int, EncodedDocument] = {}
    for dim in dict.fromkeys(d.fingerprints.dim for d in docs):
        idx = [i for i, d in enumerate(docs) if d.fingerprints.dim == dim]
        encoded = encode_documents([docs[i] for i in idx], codec_set(dim), encoder=encoder)
        out.update(zip(idx, encoded, strict=True))
    return [out[i] for i in range(len(docs))]
