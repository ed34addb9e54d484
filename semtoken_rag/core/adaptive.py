"""The adaptive budget (``compression_ratio="auto"``): how much to keep, chosen per question.

Why: the right ratio differs per question.  A lookup is answered by one sentence; a multi-hop
question needs the sentences that match each of its parts.  The engine already measures, for
every content word of the question, its best match in each unit (late interaction), so it can
tell when the units it would keep *cover the question*:

* a content word ``q`` is **covered** by a set of units when its best match among them is at
  least its best match among the units the selection may choose (the candidates: a collapsed
  span offers only its representative, and a near-duplicate of a better ranked unit is never
  kept, see :func:`~semtoken_rag.core.autoselect.keepable_units`) minus ``tolerance``
  (cosine);
* the budget is the cost of the shortest prefix of the candidates, in the order the selection
  ranks them, after which at least ``target_coverage`` of the question's content words are
  covered, plus the force-kept units and the separators (one per chosen unit, and one between
  each two runs of force-kept units), clipped to ``[floor, ceiling]``.

The coverage a plan reports is then measured on the text the selection kept
(:func:`kept_coverage`).  A summary request (or no question) has no words to cover: it gets
the ceiling.  A question whose words all match weakly (something the context does not hold) is
covered by its few best units and gets the floor.  Pure numpy; deterministic: same arrays,
same budget.
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
        tolerance: Cosine by which a word's match in the kept text may fall short of its best
            match in the whole context and still count as covered.
        per_chunk: Share the chosen budget between chunks in proportion to their lengths (the
            ``per_chunk`` scope) instead of spending it jointly.
        n_chunks: Chunks of the context, each given a share under ``per_chunk`` (those holding
            no unit, blank ones, get 0: counted from the units alone, trailing ones had none).
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
        reason: ``coverage`` (the covering prefix, which reaches the target coverage),
            ``floor`` / ``ceiling`` (clipped to the bound; ``ceiling`` also when no prefix of
            the candidates reaches the target), ``summary`` (no question words: the ceiling).
        coverage: Share of the question's content words covered: by the covering prefix as
            :func:`choose_budget` returns it; in a plan, by the text the selection kept
            (:func:`kept_coverage`), which a bound can make more (the floor) or less (the
            ceiling) than the prefix's.
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
        order: ``(m,) int64`` the units that may be chosen, in the order the selection ranks
            them (a word's best match is taken among these).
        target: Share of words to cover, in ``(0, 1]``.
        tolerance: See :class:`AdaptiveRule`.
    """
    if matches.shape[0] == 0 or len(order) == 0:
        return 0, 1.0
    ranked = matches[:, order]
    # The best match among the units in ``order`` (the candidates), not among all units: a unit
    # the selection may not choose can never be kept, so measuring against it would make the
    # target unreachable and the prefix always the whole order.
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
    """``(kept, n_chosen, coverage)``: ``(U,) bool`` the forced units plus the shortest prefix
    of the candidates (at least one unit) that covers the question, the units in that prefix,
    and the share of the question's words it covers (arguments as :func:`choose_budget`)."""
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
        matches: ``(Q, U)`` word-unit matches of the question's content words, or ``None``
            for a summary request / no question.
        scores: ``(U,)`` the selection's unit scores, ranked as the selection ranks them
            (:func:`~semtoken_rag.core.scoring.selection_order`).
        unit_costs: ``(U,) int64`` tokens of each unit.
        candidates: ``(U,) bool`` units the selection may choose.
        forced: ``(U,) bool`` units kept whatever the budget (their cost is added).
        rule: Floor, ceiling, target, tolerance and the separator's cost (see
            :func:`_separators` for how many are paid).
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
    """Share of the question's content words the kept text covers, as :func:`covering_prefix`
    counts a word covered (its best match, less ``tolerance``, among the units that may be
    kept).

    Why measured after the selection: the choice reports what the reader gets, and the
    selection keeps more than the covering prefix under a floor, less under a ceiling, and a
    unit's leading words when its whole does not fit (the never-empty promise).

    Args:
        matches: ``(Q, U)`` word-unit matches.
        keepable: ``(U,) bool`` units the selection keeps when every unit fits.
        kept: ``(U,) bool`` units kept in full.
        tolerance: See :class:`AdaptiveRule`.
        partial_matches: ``(Q,)`` each word's best match among the leading words kept of a
            partly kept unit, or ``None``.
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
    """The selection's budgets under the ``auto`` rule and the choice behind them: the budget
    of :func:`choose_budget`, scoped by :func:`scope_budgets` (per chunk, with the chunks'
    :func:`chunk_needs` of the units it paid for).

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
    """Separators the selection may charge while keeping the forced units, then ``n_chosen``
    more units one by one: one per chosen unit, plus one between each two runs of forced units.

    Why this bound and not the separators of the final kept set: the selection charges each
    unit the separators its piece adds *when it is kept*, and a unit kept before its neighbour
    can open a piece that the neighbour later closes, so the count along the way can exceed the
    final one.  At any step the pieces are at most the forced runs plus the chosen units kept so
    far, so the separators (pieces minus one per chunk) are at most this count; a budget that
    pays them keeps every chosen unit whole (force-kept pieces are separated too: forgetting
    their separators cut the covering unit).

    Args:
        forced: ``(U,) bool`` force-kept units (runs are counted over the whole context: a run
            that crosses a chunk boundary is two pieces but also two chunks, so one separator
            fewer is still enough).
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
    """``(n_chunks,) int64`` what each chunk needs to keep its units of ``kept`` (from
    :func:`covering_set`): their tokens and, bounded per chunk as :func:`_separators` bounds
    them over the context, their separators."""
    chosen = kept & ~forced
    costs = np.bincount(unit_chunk[kept], weights=unit_costs[kept], minlength=n_chunks)
    n_chosen = np.bincount(unit_chunk[chosen], minlength=n_chunks)
    continues = np.r_[False, forced[:-1] & (unit_chunk[1:] == unit_chunk[:-1])]
    runs = np.bincount(unit_chunk[forced & ~continues], minlength=n_chunks)
    separators = n_chosen + np.maximum(runs - 1, 0)
    return (costs + separator_cost * separators).astype(np.int64)


def share_by_weight(total: int, weights: np.ndarray) -> np.ndarray:
    """``(n,) int64`` shares of ``total`` in proportion to ``(n,)`` integer ``weights`` (all
    zero: equal), summing to ``total``.

    Floored exactly (integers, not float shares, which put ``29/100 * 100`` at 28); the tokens
    lost to rounding go to the heaviest first, each up to its weight (a chunk cannot spend more
    than it holds), so a small total is never rounded down to nothing.
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

    Per chunk, the covering units' tokens stay in their own chunks (``needs``, from
    :func:`chunk_needs`): shared by length alone, a short chunk holding the answer got a
    share too small for it while the others spent its tokens.  What is left above ``needs``
    is shared by the room each chunk has left (its tokens less its need): shared by length, a
    chunk already kept whole got tokens it could not spend while a longer one lost text.
    Without ``needs`` the budget is shared by length; a ceiling below ``needs`` shrinks each
    chunk's part alike (:func:`share_by_weight` for every share).
    """
    if not rule.per_chunk:
        return np.asarray([choice.tokens], dtype=np.int64)
    if needs is None:
        return share_by_weight(choice.tokens, chunk_costs)
    if choice.tokens < int(needs.sum()):
        return share_by_weight(choice.tokens, needs)
    room = np.maximum(chunk_costs - needs, 0)
    return needs + share_by_weight(choice.tokens - int(needs.sum()), room)
