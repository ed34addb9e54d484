"""How many tokens a call may keep: one rule for the engine, the harness and every baseline.

Pure (numpy): the per-call ratio or budget, else the config's, spent jointly over all chunks
or shared per chunk in proportion to their lengths, never above the text.
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
    as that integer.

    Why: a ratio written as a decimal is stored in binary a hair off, so ``0.58 * 100`` is
    ``57.99...``: a plain floor gave 57, and ``ceil(0.07 * 100)`` gave 8.  A tolerance of 1e-12
    of the product is far above float rounding and far below one token (``1/3`` of 3 stays 1).
    """
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
    """Tokens the reader reads for one ``separator`` between two kept pieces.

    Why it is counted between two words and not alone: a counter charges every token to a word,
    so a separator without one (``"\\n"``, ``"\\n\\n"``, ``"\\t"``) counts 0 alone, while a BPE
    reader reads its line breaks as tokens (SmolLM2: one per ``"\\n"`` before a word), and the
    budget must pay what the rendered text costs.  The larger of its count between two words (less
    the space the pieces lose) and alone is charged, so merging with the probe word costs no less.

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
    """Per-word costs a budget charges, so a piece cut inside a long run reads no more tokens
    than it was charged.

    Why not the counter's costs alone: they share the whole text's tokens among its words, but a
    kept piece is read without its neighbours, and a cut where a long run was hard-wrapped (a
    URL, base64) splits one of the reader's tokens (charged the shares, such pieces read 1-2
    tokens over).  So a word beside a wrap is charged at least what it costs alone.

    Not charged yet (each changes the golden outputs, which issue 22 does not allow): a piece's
    first word losing the space a BPE reader merges into it (SmolLM2: " centuries" 1 token,
    "centuries" 2), and cuts between CJK characters.

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
    """The budgets of one call: fixed ``(1,)``/``(n_chunks,)`` tokens (:func:`token_budgets`),
    or the ``auto`` rule: the call's ``ratio="auto"``, or no per-call budget and the config's
    ``compression_ratio="auto"``.

    Args:
        originals: ``(n_chunks,) int64`` tokens of each chunk.
        ratio: The call's ratio (``"auto"``, a number, or ``None``: the config's, unless
            ``budget`` is given).
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
        InvalidInputError: the ``auto`` budget (it needs the engine's own evidence), or scores
            that are not one finite number per unit.
    """
    if not isinstance(budgets, np.ndarray):
        raise InvalidInputError("ratio='auto' needs the engine's own scores, not scores=")
    ext = check_scores(scores, arrays.n_units)
    return plan_scored(arrays, ext, budgets, selection, separator_cost=separator_cost)
