"""Span formation: greedy merge of adjacent units similar to the span's first unit.

The paper's Algorithm 1 opens a span at unit ``t`` and extends it while ``cos(h_t, h_j) > tau``,
here without a Python loop per unit:

1. Per offset ``d = 1..max_size-1`` one dot product gives ``cos(h_i, h_{i+d})``; each anchor's
   run length ``L_i`` is its count of leading passing offsets (chunk boundaries stop a run).
2. The spans opened are the orbit of ``0`` under ``i -> i + 1 + L_i``, by pointer doubling.

Work is ``O(n * max_size * d)``: linear in the number of units.
"""

from __future__ import annotations

import numpy as np


def run_lengths(
    unit_vectors: np.ndarray,
    tau: float,
    max_size: int,
    breaks: np.ndarray | None = None,
) -> np.ndarray:
    """How many following units each unit would absorb as a span anchor.

    Args:
        unit_vectors: ``(n, d) float32`` L2-normalised unit fingerprints.
        tau: Similarity threshold; a unit joins when its cosine with the anchor is ``> tau``.
        max_size: Largest span (anchor included).
        breaks: ``(n,) bool`` units that may not join the span before (chunk starts), or ``None``.

    Returns:
        ``(n,) int64`` run length ``L_i`` in ``[0, max_size - 1]``.
    """
    n = len(unit_vectors)
    lengths = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    for d in range(1, min(max_size, n)):
        sim = np.einsum("ij,ij->i", unit_vectors[:-d], unit_vectors[d:])
        ok = sim > tau
        if breaks is not None:
            ok &= ~breaks[d:]
        alive[: n - d] &= ok
        alive[n - d :] = False
        if not alive.any():
            break
        lengths += alive
    return lengths


def follow_spans(lengths: np.ndarray) -> np.ndarray:
    """Start indices of the spans the greedy scan opens, given every anchor's run length.

    Args:
        lengths: ``(n,) int64`` from :func:`run_lengths`.

    Returns:
        ``(k,) int64`` strictly increasing span starts with ``starts[0] == 0``.
    """
    n = len(lengths)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    jump = np.append(np.arange(n, dtype=np.int64) + 1 + lengths, n).clip(max=n)
    path = np.zeros(1, dtype=np.int64)
    # path holds f^0(0) .. f^(2^k - 1)(0); jump is f^(2^k).  Double until the end is reached.
    while path[-1] < n:
        path = np.concatenate([path, jump[path]])
        jump = jump[jump]
    return np.unique(path[path < n])


def form_spans(
    unit_vectors: np.ndarray,
    tau: float,
    max_size: int,
    breaks: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy anchored span formation (Algorithm 1, step 2); arguments as :func:`run_lengths`.

    Returns:
        ``(k,) int64`` span starts (unit indices), ``starts[0] == 0`` unless ``n == 0``.
    """
    return follow_spans(run_lengths(unit_vectors, tau, max_size, breaks))
