"""Coverage: when the question says little, spend the budget on many distinct topics.

For a generic question ("Summarize the meeting", or none) relevance ranking keeps near-repeats
of the document's centre. Coverage ranks units by how much *new* content each adds: budgeted
facility location (Lin & Bilmes, 2011), maximised greedily,

    F(S) = sum_j w_j * max_{i in S} sim(j, i)        gain(i | S) / cost(i)

where ``sim`` is the cosine of unit fingerprints (negatives count as 0) and ``w_j`` how much
unit ``j`` matters (its span's semantic entropy). The greedy order is returned as scores for
:mod:`semtoken_rag.core.budget`. Similarities are sparse (each unit's ``neighbours`` nearest:
``O(U * k)`` memory); the greedy is lazy (Minoux: stale bounds in a heap), exact for submodular F.
"""

from __future__ import annotations

import heapq

import numpy as np


def neighbour_graph(
    unit_vectors: np.ndarray, neighbours: int, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar units of every unit (itself included), similarities clipped at 0.

    Args:
        unit_vectors: ``(U, d) float32`` L2-normalised.
        neighbours: ``k`` (clipped to ``U``).
        block: Rows per matrix product.

    Returns:
        ``(index (U, k) int64, sim (U, k) float32)``: the units that can cover ``j``, how well.
    """
    n = len(unit_vectors)
    k = max(1, min(neighbours, n))
    index = np.zeros((n, k), dtype=np.int64)
    sim = np.zeros((n, k), dtype=np.float32)
    x = unit_vectors.astype(np.float32, copy=False)
    for lo in range(0, n, block):
        s = x[lo : lo + block] @ x.T
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
        index[lo : lo + len(s)] = idx
        sim[lo : lo + len(s)] = np.maximum(np.take_along_axis(s, idx, axis=1), 0.0)
    return index, sim


def coverage_scores(
    unit_vectors: np.ndarray,
    costs: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    neighbours: int = 32,
) -> np.ndarray:
    """Greedy facility-location order of the units, as scores (higher = picked earlier).

    Args:
        unit_vectors: ``(U, d) float32`` L2-normalised unit fingerprints.
        costs: ``(U,) int64`` tokens of each unit (``>= 0``; 0 counts as 1).
        weights: ``(U,) float`` importance of covering each unit (``>= 0``); ``None``: all 1.
        neighbours: Sparsity of the similarity graph (see :func:`neighbour_graph`).

    Returns:
        ``(U,) float32``: ``U - rank`` (the first pick scores ``U``); ties by original order.
    """
    n = len(unit_vectors)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    w = np.ones(n, dtype=np.float64) if weights is None else np.maximum(weights, 0.0).astype(float)
    index, sim = neighbour_graph(unit_vectors, neighbours)
    # Transpose the graph: which units j can candidate i cover, and how well.
    cols = index.ravel()
    order = np.argsort(cols, kind="stable")
    cover_ptr = np.r_[0, np.cumsum(np.bincount(cols, minlength=n))]
    covered_units = order // index.shape[1]  # the row of each entry of the (U, k) graph
    covered_sim = sim.ravel()[order].astype(np.float64)
    scale = np.maximum(costs.astype(np.float64), 1.0)

    best = np.zeros(n, dtype=np.float64)  # current coverage of each unit

    def gain(i: int) -> float:
        a, b = cover_ptr[i], cover_ptr[i + 1]
        j = covered_units[a:b]
        return float((w[j] * np.maximum(covered_sim[a:b] - best[j], 0.0)).sum()) / scale[i]

    heap = [(-gain(i), i) for i in range(n)]
    heapq.heapify(heap)
    scores = np.zeros(n, dtype=np.float32)
    rank = 0
    while heap:
        _, i = heapq.heappop(heap)
        fresh = gain(i)
        # Relative slack for float noise: weights are defined only up to a common factor.
        if heap and fresh < -heap[0][0] * (1.0 - 1e-12):
            heapq.heappush(heap, (-fresh, i))  # stale bound: re-queue with the true gain
            continue
        scores[i] = n - rank
        rank += 1
        a, b = cover_ptr[i], cover_ptr[i + 1]
        j = covered_units[a:b]
        best[j] = np.maximum(best[j], covered_sim[a:b])
    return scores
