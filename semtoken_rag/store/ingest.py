"""Ingestion into a fingerprint store: chunk texts in, encoded fingerprints committed.

Apart from :mod:`semtoken_rag.store.store` because it is the one place the store meets an
encoder; the store itself only ever sees ``(key, fingerprints)`` pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from semtoken_rag.fingerprints import fingerprint_key

if TYPE_CHECKING:
    from semtoken_rag.store.store import FingerprintStore

logger = logging.getLogger(__name__)


def add_texts(
    store: FingerprintStore,
    texts: Sequence[str],
    compressor_or_encoder: Any,
    batch_size: int = 64,
    progress: bool = True,
) -> int:
    """Body of :meth:`FingerprintStore.add_texts` (see there)."""
    enc = (
        compressor_or_encoder
        if hasattr(compressor_or_encoder, "encode_texts")
        else compressor_or_encoder.encoder
    )
    by_key = {fingerprint_key(t, enc.cache_id): t for t in texts}
    present = store.contains_many(list(by_key))
    todo = [(k, t) for k, t in by_key.items() if k not in present]
    from tqdm.auto import tqdm

    with tqdm(total=len(todo), desc="fingerprints", unit="chunk", disable=not progress) as bar:
        for lo in range(0, len(todo), max(1, batch_size)):
            batch = todo[lo : lo + batch_size]
            fps = enc.encode_texts([t for _, t in batch])
            store.put_many(
                [(k, fp) for (k, _), fp in zip(batch, fps, strict=True)],
                encoder_id=str(enc.cache_id),
            )
            bar.update(len(batch))
    logger.info("ingested %d new chunks (%d already stored)", len(todo), len(present))
    return len(todo)
