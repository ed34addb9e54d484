"""The trained store behind the ``semtoken-store-<codec>`` variants of the harness.

Why a variant: a codec changes the fingerprints the compressor sees only when they come *out of
the store*.  Each example's chunks are ingested into a :class:`FingerprintStore` of the codec
first (encode -> store -> decode), then compressed with every fingerprint a store hit, so the
run measures exactly what a deployment that ingested its corpus would get.

The store is shared by the run (in memory) and its codec is trained before the first example on
a corpus disjoint from every evaluation set: the Paul Graham essays of
``shared/data/needle_haystack`` (chunks of 120 words, overlap 20, ingested until the codec's
``train_min`` vectors exist).  An out-of-domain codebook is the conservative choice: a real
store trains on the corpus it serves.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def trained_store(encoder: Any, codec: str, root: Path | None = None) -> Any:
    """An in-memory :class:`FingerprintStore` of ``codec`` whose codebook is trained on the
    essays (:func:`semtoken_lab.bench.store.training_chunks`).

    Raises:
        InvalidInputError: the training corpus is missing or too small for the codec.
    """
    from semtoken_rag.store import FingerprintStore

    from semtoken_lab.bench.store import train_store, training_chunks

    store = FingerprintStore(None, codec=codec)
    train_store(store, encoder, training_chunks(root))
    logger.info("codec %s trained: %s", codec, store.stats())
    return store
