"""How every sentence-level baseline spends its budget: through the engine's own stages.

Why: random drop, the embedding filter and Selective Context differ from SemToken only in how
they *score* units.  Each one ranks the units of :meth:`semtoken_rag.Compressor.prepare` (the
same sentences SemToken uses, without fingerprints) and hands its scores to
:meth:`~semtoken_rag.Compressor.plan`, which applies the one budget rule of the engine (greedy
by score, stopping at the first unit that does not fit, partial fill of that unit, separators
charged) and :meth:`~semtoken_rag.Compressor.render` renders them.  So every method reaches the
same achieved ratio and the comparison is about the scores alone; nothing here re-implements
selection or rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.prepared import PreparedContext
from semtoken_rag.protocols import Counter

#: How the compressed chunks of a context are joined into one prompt context.
CHUNK_SEP = "\n\n"


class UnitSelector:
    """The engine, without its encoder, as the selection and rendering of a baseline.

    Args:
        counter: Counts the budget in reader tokens (shared with the run).
        max_unit_words: Longest unit (48: sentences as SemToken's; 12: Selective Context's
            phrases).
    """

    def __init__(self, counter: Counter, *, max_unit_words: int = 48) -> None:
        config = SemTokenConfig(max_unit_words=max_unit_words, cache_embeddings=False)
        self.engine = Compressor(config, counter=counter)

    def units(self, chunks: Sequence[str]) -> PreparedContext:
        """The units of ``chunks`` (segmented and costed; no encoder runs)."""
        return self.engine.prepare(list(chunks), fingerprints=False)

    def select(self, prepared: PreparedContext, scores: Any, budget: int) -> str:
        """The best units by ``scores`` under ``budget`` reader tokens, rendered as one context.

        Args:
            prepared: From :meth:`units`.
            scores: ``(U,)`` one score per unit of ``prepared.unit_texts()``; higher is kept
                first, ties keep the earlier unit.
            budget: Reader tokens to spend (> 0).
        """
        if not prepared.unit_texts():
            return ""
        plan = self.engine.plan(prepared, scores=np.asarray(scores, np.float64), budget=budget)
        return self.engine.render(plan).joined(CHUNK_SEP)
