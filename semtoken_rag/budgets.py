"""How many tokens a call may keep: one rule for the engine, the harness and every baseline.

Pure (numpy): the per-call ratio or budget, else the config's, joint or shared per chunk by length.
"""

from __future__ import annotations

import math

import numpy as np

from semtoken_rag.config import BudgetConfig
from semtoken_rag.core.adaptive import AdaptiveRule, share_by_weight
from semtoken_rag.core.arrays import ContextArrays, CorePlan
from semtoken_rag.core.params import SelectionConfig
from semtoken_rag.core.pipeline import plan_scored
from semtoken_rag.core.segment import wrapped_words
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.inputs import check_scores, model_text
from semtoken_rag.protocols import Counter

#: The word a separator is counted between (any short word the tokenizer keeps whole).
_PROBE = "a"


def ratio_tokens(ratio: float, tokens: int, up: bool = False) -> int:
    """``floor(ratio * tokens)`` (``up``: ``ceil``), a product a hair under an integer counted
    as that integer (``0.58 * 100`` is ``57.99...``): the 1e-12 relative tolerance is far above
    float rounding and far below one token."""
    x = float(ratio) * int(tokens)
    tol = 1e-12 * max(abs(x), 1.0)
    return math.ceil(x - tol) if up else math.floor(x + tol)


def token_budgets(
    originals: np.ndarray, ratio: float | None, budget: int | None, config: BudgetConfig
) -> np.ndarray:
    """Token budget(s) of one call with a fixed budget (arguments as in :func:`call_budgets`).

    Returns:
        ``(1,) int64`` joint budget, or ``(n_chunks,) int64`` per-chunk budgets.
    """
    total = int(originals.sum())
    if budget is None and ratio is None:
        budget = config.budget_tokens
        ratio = None if config.compression_ratio == "auto" else float(config.compression_ratio)
    if budget is not None:
        budget = min(int(budget), total)  # also keeps huge budgets out of int64 overflow
    if config.budget_scope == "joint":
        b = budget if budget is not None else ratio_tokens(ratio or 1.0, total)
        return np.asarray([b], dtype=np.int64)
    if budget is not None:  # shared by length, every token of it
        return share_by_weight(budget, originals)
    return np.asarray([ratio_tokens(ratio or 1.0, n) for n in originals.tolist()], np.int64)


def separator_cost(counter: Counter, separator: str) -> int:
    """Tokens the reader reads for one ``separator`` between two kept pieces: the larger of its
    count alone and between two words (less the space lost), as a counter charges every token to
    a word (``"\\n"`` alone may count 0) while a BPE reader reads line breaks as tokens.

    Args:
        counter: The counter the budget is counted in.
        separator: The configured separator (``""``: nothing between pieces, 0).
    """
    if not separator:
        return 0
    sep = model_text(separator)
    between = counter.count(f"{_PROBE}{sep}{_PROBE}") - counter.count(f"{_PROBE} {_PROBE}")
    return max(counter.count(sep), between, 0)


def piece_edge_costs(counter: Counter, text: str, word_spans: np.ndarray) -> np.ndarray:
    """Per-word costs a budget charges: a word beside a hard wrap of a long run (URL, base64) at
    least what it costs alone, as a kept piece is read alone.  Not charged yet (it would change
    the golden outputs, issue 22): a first word losing its BPE-merged space; cuts inside CJK.

    Args:
        counter: The counter the budget is counted in.
        text: The chunk text (as counted).
        word_spans: ``(n_words, 2) int64`` word character spans.

    Returns:
        ``(n_words,) int64`` costs, at least the counter's :meth:`word_costs` (read-only).
    """
    costs = counter.word_costs(text, word_spans)
    edges = wrapped_words(word_spans)
    if not len(edges):
        return costs
    alone = [counter.count(text[s:e]) for s, e in word_spans[edges].tolist()]
    out = np.array(costs, dtype=np.int64)
    out[edges] = np.maximum(out[edges], np.asarray(alone, dtype=np.int64))
    out.flags.writeable = False
    return out


def call_budgets(
    originals: np.ndarray, ratio: float | str | None, budget: int | None, config: BudgetConfig
) -> np.ndarray | AdaptiveRule:
    """The budgets of one call: fixed ``(1,)``/``(n_chunks,)`` tokens (:func:`token_budgets`), or
    the ``auto`` rule (``ratio="auto"``, or no per-call budget and ``compression_ratio="auto"``).

    Args:
        originals: ``(n_chunks,) int64`` tokens of each chunk.
        ratio: The call's ratio (``"auto"``, a number, or ``None``: the config's).
        budget: The call's absolute budget (overrides any ratio).
        config: The budget part of the engine's config (bounds, target, tolerance, scope).
    """
    own = ratio is None and budget is None and config.budget_tokens is None
    if ratio != "auto" and not (own and config.compression_ratio == "auto"):
        return token_budgets(originals, None if isinstance(ratio, str) else ratio, budget, config)
    total = int(originals.sum())
    ceiling = ratio_tokens(config.max_ratio, total)
    if config.max_tokens is not None:
        ceiling = min(ceiling, config.max_tokens)
    floor = min(ratio_tokens(config.min_ratio, total, up=True), ceiling)
    return AdaptiveRule(
        floor=floor,
        ceiling=ceiling,
        target_coverage=config.target_coverage,
        tolerance=config.coverage_tolerance,
        per_chunk=config.budget_scope == "per_chunk",
        n_chunks=len(originals),
    )


def plan_with_scores(
    arrays: ContextArrays,
    scores: object,
    budgets: np.ndarray | AdaptiveRule,
    selection: SelectionConfig,
    separator_cost: int,
) -> CorePlan:
    """The budget rule over units ranked by external scores (``plan(..., scores=...)``).

    Raises:
        InvalidInputError: the ``auto`` budget, or not one finite score per unit.
    """
    if not isinstance(budgets, np.ndarray):
        raise InvalidInputError("ratio='auto' needs the engine's own scores, not scores=")
    ext = check_scores(scores, arrays.n_units)
    return plan_scored(arrays, ext, budgets, selection, separator_cost=separator_cost)
