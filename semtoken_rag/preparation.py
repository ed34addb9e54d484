"""Stage 1: fingerprints (from the store where it holds them) and memoised per-chunk
segmentation, token costs, force-keep flags and word ids.

Memoised: a warm compression would otherwise re-segment and re-hash every word on each call; the
result depends only on the text, the compressor's fixed config and its counter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from semtoken_rag.budgets import piece_edge_costs
from semtoken_rag.cache import LRUMemo, text_and_arrays_bytes
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.core.forcekeep import compile_rules, forced_units, match_spans
from semtoken_rag.core.segment import find_units, find_words, word_ids
from semtoken_rag.errors import InvalidInputError, NonFiniteFingerprintsError, StoreError
from semtoken_rag.fingerprints import (
    REAL_KINDS,
    ChunkFingerprints,
    ChunkSource,
    with_unit_vectors,
)
from semtoken_rag.inputs import check_sources, check_strings, model_text
from semtoken_rag.prepared import PreparedChunk
from semtoken_rag.protocols import Counter, FingerprintEncoder, FingerprintStoreProtocol

logger = logging.getLogger(__name__)

#: Bytes of chunk texts whose preparation is memoised (about 40 bytes a word: 1.7M words).
PREPARE_CACHE_BYTES = 64 << 20


class ChunkPreparer:
    """Prepares chunks for one compressor (its config, force-keep rules and counter).

    Args:
        config: The compressor's configuration.
        counter: Returns the counting tokenizer (built lazily by the compressor).
    """

    def __init__(self, config: SemTokenConfig, counter: Callable[[], Counter]) -> None:
        self.config = config
        self._counter = counter
        self.rules: Any = compile_rules(config.budget.force_keep, config.budget.force_keep_presets)
        self._memo: LRUMemo[str, PreparedChunk] = LRUMemo(PREPARE_CACHE_BYTES, _prepared_bytes)

    def __call__(self, text: str, fp: ChunkFingerprints | None) -> PreparedChunk:
        """The prepared chunk of ``text`` (``fp`` attached when given); its arrays are read-only."""
        hit = self._memo.get(text)
        if hit is None or (fp is not None and hit.n_words != fp.n_words):
            hit = self._prepare(text, fp)
            self._memo.put(text, hit)
        if fp is None:
            return hit
        return PreparedChunk(
            text, fp.word_spans, hit.unit_starts, hit.word_costs, hit.forced, hit.word_ids, fp
        )

    def _prepare(self, text: str, fp: ChunkFingerprints | None) -> PreparedChunk:
        clean = model_text(text)
        spans = fp.word_spans if fp is not None else find_words(clean)
        sel = self.config.selection
        units = find_units(clean, spans, sel.max_unit_words, sel.unit)
        costs = piece_edge_costs(self._counter(), clean, spans)
        matches = match_spans(clean, self.rules, self.config.budget.force_keep_timeout)
        forced = forced_units(matches, spans, units)
        ids = word_ids(clean, spans) if sel.lexical_dedup_threshold is not None else None
        # Memoised and handed out: frozen, so a caller's write cannot change later results.
        for a in (spans, units, costs, forced, ids):
            if a is not None:
                a.flags.writeable = False
        return PreparedChunk(text, spans, units, costs, forced, ids)


def _prepared_bytes(text: str, c: PreparedChunk) -> int:
    """Bytes a memoised prepared chunk holds (its text and arrays; no fingerprints)."""
    arrays = (c.word_spans, c.unit_starts, c.word_costs, c.forced, c.word_ids)
    return text_and_arrays_bytes(text, *arrays)


def fingerprints_of(
    texts: Sequence[str],
    encoder: FingerprintEncoder,
    store: FingerprintStoreProtocol | None,
    sources: Sequence[ChunkSource | None] | None = None,
) -> tuple[list[ChunkFingerprints], int]:
    """:meth:`Compressor.fingerprints`: the one place the engine meets a store (lookups, then
    the misses encoded in one batched pass and put back).

    A put the store refuses (:class:`StoreError`) is logged, not raised: the fingerprints are
    correct, and a request must not fail for not caching them.  Unsound ones (:func:`_storable`)
    serve this call only.

    Raises:
        NonFiniteFingerprintsError: the encoder produced NaN or infinity (nothing is stored).
        InvalidInputError: it produced fingerprints that are not real numbers.
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
        check_finite(new)
        new = {t: with_unit_vectors(fp) for t, fp in new.items()}
        found = [fp if fp is not None else new[t] for fp, t in zip(found, texts, strict=True)]
        if store is not None:
            _put_sound(store, new, encoder)
    return [fp for fp in found if fp is not None], len(missing)


def _put_sound(
    store: FingerprintStoreProtocol, new: dict[str, ChunkFingerprints], encoder: FingerprintEncoder
) -> None:
    """Store the sound new fingerprints (:func:`_storable`); log the rest and a refused put."""
    keep = {t: fp for t, fp in new.items() if _storable(t, fp, encoder.dim)}
    if len(keep) < len(new):
        logger.warning("%d unsound new chunk fingerprints were not stored", len(new) - len(keep))
    if keep:
        try:
            store.put(list(keep), list(keep.values()), encoder.cache_id)
        except StoreError as exc:
            logger.warning("%d new chunk fingerprints were not stored: %s", len(keep), exc)


def check_finite(new: dict[str, ChunkFingerprints]) -> None:
    """Raise :class:`NonFiniteFingerprintsError` naming the first of ``new`` (text to its
    fingerprints) with NaN or infinity, :class:`InvalidInputError` for non-real vectors."""
    unreal = [t for t, fp in new.items() if fp.vectors.dtype.kind not in REAL_KINDS]
    if unreal:
        first = unreal[0]
        raise InvalidInputError(
            f"the encoder produced {new[first].vectors.dtype} fingerprints for {len(unreal)} of "
            f"{len(new)} chunks (the first: {first[:40]!r}); they must be real numbers"
        )
    bad = [t for t, fp in new.items() if not np.isfinite(fp.vectors).all()]
    if bad:
        raise NonFiniteFingerprintsError(
            f"the encoder produced NaN or infinite fingerprints for {len(bad)} of {len(new)} "
            f"chunks (the first: {bad[0][:40]!r}); nothing was compressed "
            f"({NonFiniteFingerprintsError.HINT})"
        )


def _storable(text: str, fp: ChunkFingerprints, dim: int) -> bool:
    """Whether the encoder's fingerprints of ``text`` may be stored: its dimension, one per word.

    A store serves them to every later call, so one bad answer stored would fail them all; the
    call that got it still uses it (a custom encoder may split words its own way)."""
    return fp.dim == dim and fp.n_words == len(find_words(model_text(text)))
