"""Stage 1 per chunk: segmentation, token costs, force-keep flags and word ids, memoised.

Why a class of its own: a warm compression (fingerprints from the store) would otherwise
re-segment and re-hash every word of every chunk on each call, about a third of its time; the
result depends only on the text, the compressor's fixed config and its counter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from semtoken_rag.cache import LRUMemo
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.core.forcekeep import compile_rules, forced_units, match_spans
from semtoken_rag.core.segment import find_units, find_words, word_ids
from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.inputs import model_text
from semtoken_rag.prepared import PreparedChunk
from semtoken_rag.protocols import Counter

#: Chunk texts whose segmentation, token costs, force-keep flags and word ids are memoised.
PREPARE_CACHE_SIZE = 2048


class ChunkPreparer:
    """Prepares chunks for one compressor (its config, force-keep rules and counter).

    Args:
        config: The compressor's configuration.
        counter: Returns the counting tokenizer (built lazily by the compressor).
    """

    def __init__(self, config: SemTokenConfig, counter: Callable[[], Counter]) -> None:
        self.config = config
        self._counter = counter
        budget = config.budget
        self.rules: Any = compile_rules(budget.force_keep, budget.force_keep_presets)
        self._memo: LRUMemo[str, PreparedChunk] = LRUMemo(PREPARE_CACHE_SIZE)

    def __call__(self, text: str, fp: ChunkFingerprints | None) -> PreparedChunk:
        """The prepared chunk of ``text`` (with ``fp`` attached when given).  The memoised
        arrays are read-only."""
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
        costs = self._counter().word_costs(clean, spans)
        matches = match_spans(clean, self.rules, self.config.budget.force_keep_timeout)
        forced = forced_units(matches, spans, units)
        ids = word_ids(clean, spans) if sel.lexical_dedup_threshold is not None else None
        for a in (units, forced, ids):  # word_costs: the counter's own memo
            if a is not None:
                a.flags.writeable = False
        return PreparedChunk(text, spans, units, costs, forced, ids)
