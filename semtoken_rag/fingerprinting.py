"""Stage 1's fingerprints: from the store where it holds them, from the encoder otherwise.

Why apart from the engine: it is the one place the engine meets a store (lookups, and the
misses it encoded put back), so the rule "encode only what no stored document holds" reads in
one screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource
from semtoken_rag.inputs import check_sources, check_strings, model_text
from semtoken_rag.protocols import FingerprintEncoder, FingerprintStoreProtocol


def fingerprints_of(
    texts: Sequence[str],
    encoder: FingerprintEncoder,
    store: FingerprintStoreProtocol | None,
    sources: Sequence[ChunkSource | None] | None = None,
) -> tuple[list[ChunkFingerprints], int]:
    """Fingerprints of ``texts``: served by ``store`` (sliced from the stored document each one
    occurs in), the misses encoded in one batched pass and put back.

    Returns:
        ``(fingerprints, n_encoded)``.

    Raises:
        InvalidInputError: ``texts`` is not a sequence of strings (one string is refused), or
            sources of another length.
    """
    texts = check_strings(texts, "texts")
    sources = check_sources(sources, len(texts))
    found: list[ChunkFingerprints | None] = (
        store.lookup(texts, encoder.cache_id, sources) if store is not None else [None] * len(texts)
    )
    missing = list(dict.fromkeys(t for t, fp in zip(texts, found, strict=True) if fp is None))
    if missing:
        encoded = encoder.encode_texts([model_text(t) for t in missing])
        new = dict(zip(missing, encoded, strict=True))
        found = [fp if fp is not None else new[t] for fp, t in zip(found, texts, strict=True)]
        if store is not None:
            store.put(missing, [new[t] for t in missing], encoder.cache_id)
    return [fp for fp in found if fp is not None], len(missing)
