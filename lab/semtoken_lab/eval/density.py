"""Per-sentence semantic density of one example, for the heatmap of a run.

Semantic entropy of a sentence is the trace of the covariance of its word fingerprints (the
SemToken paper's ``H = Tr Cov``): high where the words point in many directions (dense, varied
content), low for boilerplate and repetition.  Shown beside SemToken's unit score and what each
method kept, it explains a selection at a glance.  Both rows come from the engine's own
:meth:`semtoken_rag.Compressor.explain`, never recomputed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from semtoken_lab.eval.method_env import Method, MethodEnv
from semtoken_lab.eval.metrics import normalize_answer


def sentence_density(
    env: MethodEnv,
    chunks: Sequence[str],
    question: str,
    methods: Mapping[str, Method],
    budget: int,
) -> dict[str, np.ndarray]:
    """Rows of the heatmap: entropy, relevance and kept flags per sentence.

    Returns:
        Label -> ``(n_sentences,) float64``.
    """
    from semtoken_rag import Compressor, SemTokenConfig

    encoder, store = env.semtoken_parts()
    comp = Compressor(SemTokenConfig(), encoder=encoder, store=store, counter=env.counter())
    prepared = comp.prepare(list(chunks))
    why = comp.plan(prepared, question, budget=budget).explain()
    rows = {
        "semantic entropy": why.unit_density.astype(np.float64),
        "semtoken score": why.unit_score.astype(np.float64),
    }
    sents = [normalize_answer(t) for t in prepared.unit_texts()]
    for name, fn in methods.items():
        kept = normalize_answer(fn(chunks, question, budget))
        rows[f"kept: {name}"] = np.array(
            [float(bool(s) and s in kept) for s in sents], dtype=np.float64
        )
    return rows
