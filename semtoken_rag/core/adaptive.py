"""The adaptive budget (``compression_ratio="auto"``): how much to keep, chosen per question.

From each question content word's best match in each unit (late interaction):

* a content word ``q`` is **covered** by a set of units when its best match among them is at
  least its best match among the candidates (units the selection may choose, see
  :func:`~semtoken_rag.core.autoselect.keepable_units`) minus ``tolerance`` (cosine);
* the budget is the cost of the shortest prefix of the candidates, in selection order, that
  covers ``target_coverage`` of the words, plus the force-kept units and the separators (one per
  chosen unit, one between each two runs of force-kept units), clipped to ``[floor, ceiling]``.

A plan's coverage is measured on the kept text (:func:`kept_coverage`). A summary request (or no
question) gets the ceiling; a question matching weakly everywhere gets the floor. Deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.scoring import selection_order


@dataclass(frozen=True)
class AdaptiveRule:
    """The core's view of the ``auto`` budget knobs for one context.

    Attributes:
        floor: Fewest tokens kept (``min_ratio`` of the context).
        ceiling: Most tokens kept (``max_ratio`` of the context, capped by ``max_tokens``).
        target_coverage: Share of the question's content words that must be covered.
        tolerance: Cosine by which a word's kept match may fall short of its best and count.
        per_chunk: Share the budget between chunks by length (``per_chunk`` scope), not jointly.
        n_chunks: Chunks of the context, each a share under ``per_chunk`` (blank ones get 0).
        summary: The query asks for a summary (set by the pipeline).
        separator_cost: Tokens of a separator (set by the pipeline).
    """

    floor: int
    ceiling: int
    target_coverage: float = 1.0
    tolerance: float = 0.05
    per_chunk: bool = False
    n_chunks: int = 1
    summary: bool = False
    separator_cost: int = 0


@dataclass(frozen=True)
class BudgetChoice:
    """The budget the ``auto`` rule chose for one call, and why.

    Attributes:
        tokens: The joint budget.
        reason: ``coverage`` (the covering prefix), ``floor`` / ``ceiling`` (clipped; also
            ``ceiling`` when the target is out of reach), ``summary`` (no question words).
        coverage: Share of the question's content words covered: by the covering prefix in
            :func:`choose_budget`; in a plan, by the kept text (:func:`kept_coverage`).
        needed: Tokens of the covering prefix before clipping (0 for summaries).
        query_words: Content words of the question considered.
    """

    tokens: int
    reason: str
    coverage: float = 0.0
    needed: int = 0
    query_words: int = 0

    def as_dict(self) -> dict[str, int | float | str]:
        """Plain JSON-ready values (what the CLI prints and the adapters put in metadata)."""
        return {"tokens": int(self.tokens), "reason": str(self.reason),
                "coverage": float(self.coverage), "needed": int(self.needed),
                "query_words": int(self.query_words)}  # fmt: skip


def covering_prefix(
    matches: np.ndarray, order: np.ndarray, target: float, tolerance: float
) -> tuple[int, float]:
    """``(k, coverage)``: the first ``k`` units of ``order`` cover ``coverage >= target`` of
    the query words (``k`` counts units; ``len(order)`` when only all of them do).

    Args:
        matches: ``(Q, U)`` from :func:`semtoken_rag.core.scoring.word_unit_matches`.
        order: ``(m,) int64`` the candidate units, in selection order.
        target: Share of words to cover, in ``(0, 1]``.
        tolerance: See :class:`AdaptiveRule`.
    """
    if matches.shape[0] == 0 or len(order) == 0:
        return 0, 1.0
    ranked = matches[:, order]
    # Best among the candidates only: an unchoosable unit would make the target unreachable.
    best = ranked.max(axis=1, keepdims=True)
    running = np.maximum.accumulate(ranked, axis=1)
    share = (running >= best - tolerance).mean(axis=0)
    hit = np.flatnonzero(share >= target - 1e-9)
    k = int(hit[0]) + 1 if len(hit) else len(order)
    return k, float(share[k - 1])


def covering_set(
    matches: np.ndarray,
    scores: np.ndarray,
    candidates: np.ndarray,
    forced: np.ndarray,
    rule: AdaptiveRule,
) -> tuple[np.ndarray, int, float]:
    """``(kept (U,) bool, n_chosen, coverage)``: the forced units plus the shortest covering
    prefix of the candidates (at least one unit); arguments as :func:`choose_budget`."""
    order = selection_order(scores)
    order = order[candidates[order]]
    k, coverage = covering_prefix(matches, order, rule.target_coverage, rule.tolerance)
    chosen = order[: max(k, 1)]
    kept = forced.copy()
    kept[chosen] = True
    return kept, len(chosen), coverage


def choose_budget(
    matches: np.ndarray | None,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    candidates: np.ndarray,
    forced: np.ndarray,
    rule: AdaptiveRule,
) -> BudgetChoice:
    """The ``auto`` budget of one context (see the module docstring).

    Args:
        matches: ``(Q, U)`` word-unit matches, or ``None`` (a summary request / no question).
        scores: ``(U,)`` unit scores, ranked by :func:`~semtoken_rag.core.scoring.selection_order`.
        unit_costs: ``(U,) int64`` tokens of each unit.
        candidates: ``(U,) bool`` units the selection may choose.
        forced: ``(U,) bool`` units kept whatever the budget (their cost is added).
        rule: Floor, ceiling, target, tolerance, separator cost (:func:`_separators` counts).
    """
    return _choose(matches, scores, unit_costs, candidates, forced, rule)[0]


def _choose(
    matches: np.ndarray | None,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    candidates: np.ndarray,
    forced: np.ndarray,
    rule: AdaptiveRule,
) -> tuple[BudgetChoice, np.ndarray | None]:
    """:func:`choose_budget`, and the units it paid for (``None`` for a summary)."""
    if matches is None or matches.shape[0] == 0:
        return BudgetChoice(rule.ceiling, "summary"), None
    kept, n_chosen, coverage = covering_set(matches, scores, candidates, forced, rule)
    needed = int(unit_costs[kept].sum()) + rule.separator_cost * _separators(forced, n_chosen)
    tokens = min(max(needed, rule.floor), rule.ceiling)
    covered = coverage >= rule.target_coverage - 1e-9
    if tokens == needed and covered:
        reason = "coverage"
    else:  # clipped, or (all candidates taken) the target out of reach: no covering prefix
        reason = "floor" if tokens > needed else "ceiling"
    return BudgetChoice(tokens, reason, coverage, needed, int(matches.shape[0])), kept


def kept_coverage(
    matches: np.ndarray,
    keepable: np.ndarray,
    kept: np.ndarray,
    tolerance: float,
    partial_matches: np.ndarray | None = None,
) -> float:
    """Share of the question's content words the kept text covers (as :func:`covering_prefix`).

    Measured after the selection: it keeps more than the covering prefix under a floor, less
    under a ceiling, and a unit's leading words when the whole does not fit.

    Args:
        matches: ``(Q, U)`` word-unit matches.
        keepable: ``(U,) bool`` units the selection keeps when every unit fits.
        kept: ``(U,) bool`` units kept in full.
        tolerance: See :class:`AdaptiveRule`.
        partial_matches: ``(Q,)`` best matches in partly kept units' kept words, or ``None``.
    """
    if matches.shape[0] == 0 or not keepable.any():
        return 0.0
    best = matches[:, keepable].max(axis=1)
    got = matches[:, kept].max(axis=1) if kept.any() else np.full_like(best, -np.inf)
    if partial_matches is not None:
        got = np.maximum(got, partial_matches)
    return float((got >= best - tolerance).mean())


def adaptive_budgets(
    matches: np.ndarray | None,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    candidates: np.ndarray,
    forced: np.ndarray,
    unit_chunk: np.ndarray,
    rule: AdaptiveRule,
) -> tuple[np.ndarray, BudgetChoice]:
    """:func:`choose_budget`'s choice and its budgets, scoped by :func:`scope_budgets`.

    Args:
        unit_chunk: ``(U,) int64`` chunk of each unit; the rest as :func:`choose_budget`.
    """
    choice, kept = _choose(matches, scores, unit_costs, candidates, forced, rule)
    chunk_costs = np.bincount(unit_chunk, weights=unit_costs, minlength=rule.n_chunks)
    chunk_costs = chunk_costs.astype(np.int64)
    needs = None
    if rule.per_chunk and kept is not None:
        needs = chunk_needs(
            kept, forced, unit_costs, unit_chunk, rule.separator_cost, len(chunk_costs)
        )
    return scope_budgets(choice, rule, chunk_costs, needs), choice


def _separators(forced: np.ndarray, n_chosen: int) -> int:
    """Separators charged keeping the forced units then ``n_chosen`` more, one by one.

    One per chosen unit plus one between forced runs: an upper bound (a unit kept before its
    neighbour opens a piece the neighbour closes), so paying it keeps every chosen unit whole.

    Args:
        forced: ``(U,) bool`` force-kept units (runs counted over the whole context: a run
            crossing a chunk boundary is two pieces but also two chunks).
        n_chosen: Units chosen beyond the forced ones.
    """
    runs = int(np.count_nonzero(forced[1:] & ~forced[:-1])) + int(forced[:1].sum())
    return n_chosen + max(runs - 1, 0)


def chunk_needs(
    kept: np.ndarray,
    forced: np.ndarray,
    unit_costs: np.ndarray,
    unit_chunk: np.ndarray,
    separator_cost: int,
    n_chunks: int,
) -> np.ndarray:
    """``(n_chunks,) int64`` tokens each chunk needs for its units of ``kept``
    (:func:`covering_set`), separators bounded per chunk as :func:`_separators` does."""
    chosen = kept & ~forced
    costs = np.bincount(unit_chunk[kept], weights=unit_costs[kept], minlength=n_chunks)
    n_chosen = np.bincount(unit_chunk[chosen], minlength=n_chunks)
    continues = np.r_[False, forced[:-1] & (unit_chunk[1:] == unit_chunk[:-1])]
    runs = np.bincount(unit_chunk[forced & ~continues], minlength=n_chunks)
    separators = n_chosen + np.maximum(runs - 1, 0)
    return (costs + separator_cost * separators).astype(np.int64)


def share_by_weight(total: int, weights: np.ndarray) -> np.ndarray:
    """``(n,) int64`` shares of ``total`` in proportion to integer ``weights`` (all zero: equal).

    Floored in integers (float shares put ``29/100 * 100`` at 28); the remainder goes to the
    heaviest first, each up to its weight, so a small total never rounds down to nothing.
    """
    w = [int(x) for x in np.asarray(weights).tolist()]
    if not w:
        return np.zeros(0, dtype=np.int64)
    if not any(w):
        w = [1] * len(w)
    whole = sum(w)
    out = [total * x // whole for x in w]
    left = total - sum(out)
    for i in sorted(range(len(w)), key=lambda j: (-w[j], j)):
        add = min(left, max(w[i] - out[i], 0))
        out[i] += add
        left -= add
    out[max(range(len(w)), key=lambda j: (w[j], -j))] += left  # more than all of them hold
    return np.asarray(out, dtype=np.int64)


def scope_budgets(
    choice: BudgetChoice,
    rule: AdaptiveRule,
    chunk_costs: np.ndarray,
    needs: np.ndarray | None = None,
) -> np.ndarray:
    """The chosen budget as the selection's budgets: ``(1,)`` joint or ``(n_chunks,)`` shares.

    Per chunk, the covering units' tokens stay in their chunks (``needs``, :func:`chunk_needs`),
    so a short chunk holding the answer is not starved; the rest is shared by each chunk's room
    (tokens less need), not length, so a chunk kept whole gets no tokens it cannot spend.
    Without ``needs``: by length; a ceiling below ``needs`` shrinks each need alike.
    """
    if not rule.per_chunk:
        return np.asarray([choice.tokens], dtype=np.int64)
    if needs is None:
        return share_by_weight(choice.tokens, chunk_costs)
    if choice.tokens < int(needs.sum()):
        return share_by_weight(choice.tokens, needs)
    room = np.maximum(chunk_costs - needs, 0)
    return needs + share_by_weight(choice.tokens - int(needs.sum()), room)
