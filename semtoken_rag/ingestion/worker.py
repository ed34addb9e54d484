"""The part of ingestion that runs where the encoder runs (this process, or a Ray actor).

:func:`encode_batch` encodes documents into the store's codes
(:func:`~semtoken_rag.store.encoding.encode_documents`), so only codes travel to the writer; a
failing batch is retried document by document, so a document fails alone."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.ingestion.documents import PlannedDocument
from semtoken_rag.inputs import model_text
from semtoken_rag.store.codebooks import CodecSet
from semtoken_rag.store.encoding import (
    DocumentFingerprints,
    EncodedDocument,
    check_document,
    encode_documents,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedDocument:
    """A document that could not be encoded (never stored; a re-run tries it again)."""

    id: str
    key: str
    error: str


@dataclass
class BatchResult:
    """What one batch became: encoded documents, and the documents that failed."""

    encoded: list[EncodedDocument] = field(default_factory=list)
    failed: list[FailedDocument] = field(default_factory=list)


def describe_error(exc: BaseException) -> str:
    """One line naming the exception class and its message."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:500]}"


def _encode(encoder: Any, texts: list[str]) -> list[Any]:
    """``encoder.encode_texts`` of the texts as :func:`~semtoken_rag.inputs.model_text` (as at query
    time: a tokenizer refuses lone surrogates), checked to give one result per text."""
    out = list(encoder.encode_texts([model_text(t) for t in texts]))
    if len(out) != len(texts):
        raise InvalidInputError(f"the encoder returned {len(out)} results for {len(texts)} texts")
    return out


def _fingerprints(encoder: Any, docs: Sequence[PlannedDocument]) -> list[Any]:
    """Each document's fingerprints, or the error (a str) it failed with."""
    try:
        return _encode(encoder, [d.text for d in docs])
    except Exception as exc:
        if len(docs) == 1:
            return [describe_error(exc)]
        logger.warning(  # one line: a Ray or CUDA error's message spans many
            "batch of %d failed (%s); retrying document by document",
            len(docs), describe_error(exc),
        )  # fmt: skip
    out: list[Any] = []
    for d in docs:
        try:
            out.append(_encode(encoder, [d.text])[0])
        except Exception as exc:
            out.append(describe_error(exc))
    return out


def encode_batch(encoder: Any, docs: Sequence[PlannedDocument], codecs: CodecSet) -> BatchResult:
    """Encode ``docs`` with ``encoder`` (``encode_texts`` and ``cache_id`` of a
    :class:`~semtoken_rag.protocols.FingerprintEncoder`), then with the store's ``codecs``."""
    result = BatchResult()
    good: list[DocumentFingerprints] = []
    for doc, fp in zip(docs, _fingerprints(encoder, docs), strict=True):
        if not isinstance(fp, ChunkFingerprints):
            result.failed.append(FailedDocument(doc.id, doc.key, str(fp)))
            continue
        item = DocumentFingerprints(doc.key, doc.text, fp, doc.names)
        try:
            check_document(item)
        except InvalidInputError as exc:
            result.failed.append(FailedDocument(doc.id, doc.key, describe_error(exc)))
            continue
        good.append(item)
    result.encoded = encode_documents(good, codecs, encoder=str(encoder.cache_id))
    return result
