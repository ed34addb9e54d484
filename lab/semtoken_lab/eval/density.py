"""Per-sentence semantic density of one example, for the heatmap of a run.

Semantic entropy of a sentence is the trace of the covariance of its word fingerprints (the
SemToken paper's ``H = Tr Cov``): high where the words point in many directions (dense, varied
content), low for boilerplate and repetition.  Shown beside the query relevance and what each
method kept, it explains a selection at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from semtoken_lab.eval.methods import Method, MethodEnv
from semtoken_lab.eval.metrics import normalize_answer
from semtoken_lab.eval.selection import segment_units


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
    units = segment_units(chunks, env.counter())
    encoder, _ = env.semtoken_parts()
    fps = encoder.encode_texts(list(chunks))
    q = np.asarray(encoder.encode_queries([question])[0], dtype=np.float32)
    ent = np.zeros(len(units))
    rel = np.zeros(len(units))
    for i in range(len(units)):
        c = int(units.chunk[i])
        fp = fps[c]
        # fingerprint words are the same find_words spans as the units'.
        v = fp.vectors[int(units.word_lo[i]) : int(units.word_hi[i])]
        if len(v) > 1:
            ent[i] = float(np.trace(np.cov(v.T)))
        if len(v):
            m = v.mean(axis=0)
            rel[i] = float(m @ q / (np.linalg.norm(m) + 1e-9))
    rows = {"semantic entropy": ent, "query relevance": rel}
    sents = [normalize_answer(units.text(i)) for i in range(len(units))]
    for name, fn in methods.items():
        kept = normalize_answer(fn(chunks, question, budget))
        rows[f"kept: {name}"] = np.array(
            [float(bool(s) and s in kept) for s in sents], dtype=np.float64
        )
    return rows
