"""The stores behind the ``semtoken-store-<codec>`` and ``semtoken-docs`` variants of the harness.

Why a variant: a codec changes the fingerprints the compressor sees only when they come *out of
the store*.  Each example's chunks are ingested into a :class:`FingerprintStore` of the codec
first (encode -> store -> decode), then compressed with every fingerprint a store hit, so the
run measures exactly what a deployment that ingested its corpus would get.

The store is shared by the run (in memory) and its codec is trained before the first example on
a corpus disjoint from every evaluation set: the Paul Graham essays of
``shared/data/needle_haystack`` (chunks of 120 words, overlap 20, ingested until the codec's
``train_min`` vectors exist).  An out-of-domain codebook is the conservative choice: a real
store trains on the corpus it serves.

``semtoken-docs`` (issue 23, point 3: the fidelity of document-sliced fingerprints) reads from a
float32 store (no codec error) into which every document of the run was ingested whole before
the first example; each retrieved chunk is then served sliced from its document, its words'
fingerprints computed with the document's context on both sides, never encoded alone as
``semtoken`` encodes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def trained_store(encoder: Any, codec: str, root: Path | None = None) -> Any:
    """An in-memory :class:`FingerprintStore` of ``codec`` whose codebook is trained on the
    essays (:func:`semtoken_lab.bench.codec_training.training_chunks`).

    Raises:
        InvalidInputError: the training corpus is missing or too small for the codec.
    """
    from semtoken_rag.store import FingerprintStore

    from semtoken_lab.bench.codec_training import train_store, training_chunks

    store = FingerprintStore(None, codec=codec)
    train_store(store, encoder, training_chunks(root))
    logger.info("codec %s trained: %s", codec, store.stats())
    return store


def document_store(encoder: Any, documents: Sequence[str]) -> Any:
    """An in-memory float32 :class:`FingerprintStore` holding every one of ``documents`` whole.

    Args:
        encoder: The SemToken encoder (the compressor reading the store must use it too).
        documents: The run's documents (:attr:`semtoken_lab.eval.method_env.MethodEnv.documents`).

    Raises:
        DocumentEncodingError: a document could not be encoded.
    """
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, ingest
    from semtoken_rag.store import FingerprintStore

    store = FingerprintStore(None, codec="float32")
    report = ingest(list(documents), store, LocalRunner(encoder), IngestOptions(progress=False))
    logger.info(
        "document store: %d documents (%d words) ingested whole in %.1f s",
        report.encoded, report.words, report.seconds,
    )  # fmt: skip
    return store
