"""Paired statistics for comparing methods on the same examples.

Why paired: every method answers the *same* questions, so per-example differences cancel the
(large) between-question variance; an unpaired SE would call most real differences ties.
The "tie" rule of the reports is ``|delta| < 2 SE`` of the paired difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean (or ratio) with its standard error and the number of examples behind it."""

    value: float
    se: float
    n: int

    def is_tie(self, k: float = 2.0) -> bool:
        """``True`` when the estimate (a difference) is within ``k`` standard errors of 0."""
        if self.n <= 1 or math.isnan(self.se) or self.value == 0.0:
            return True
        return abs(self.value) < k * self.se


def _arr(x: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def mean_se(x: Sequence[float] | np.ndarray) -> Estimate:
    """Mean and standard error ``std(ddof=1)/sqrt(n)`` (SE is NaN for n < 2, mean NaN for 0)."""
    a = _arr(x)
    n = len(a)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    se = float(a.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(float(a.mean()), se, n)


def paired_delta(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> Estimate:
    """Mean of ``a - b`` over paired examples, with its SE."""
    x, y = _arr(a), _arr(b)
    if len(x) != len(y):
        raise ValueError(f"paired samples differ in length: {len(x)} vs {len(y)}")
    return mean_se(x - y)


def retained_fraction(
    method: Sequence[float] | np.ndarray,
    closed: Sequence[float] | np.ndarray,
    full: Sequence[float] | np.ndarray,
) -> Estimate:
    """Share of the full-context gain kept: ``mean(m - c) / mean(f - c)`` with a delta-method SE.

    With ``X = m - c`` and ``Y = f - c`` per example and ``R = X̄ / Ȳ``,
    ``Var(R) ≈ (Var X − 2R Cov(X, Y) + R² Var Y) / (n Ȳ²)``.  0 is the closed-book floor, 1 the
    full context; values above 1 mean the compressed context helps more than the full one.
    """
    m, c, f = _arr(method), _arr(closed), _arr(full)
    if not (len(m) == len(c) == len(f)):
        raise ValueError("retained_fraction needs three paired samples of equal length")
    n = len(m)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    x, y = m - c, f - c
    ybar = float(y.mean())
    if ybar == 0.0:
        return Estimate(math.nan, math.nan, n)
    r = float(x.mean()) / ybar
    if n < 2:
        return Estimate(r, math.nan, n)
    cov = np.cov(np.stack([x, y]), ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * ybar * ybar)
    return Estimate(r, float(math.sqrt(max(var, 0.0))), n)


def bootstrap_retained(
    method: Sequence[float] | np.ndarray,
    closed: Sequence[float] | np.ndarray,
    full: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> Estimate:
    """:func:`retained_fraction` with a paired bootstrap SE (fixed seed, reproducible)."""
    m, c, f = _arr(method), _arr(closed), _arr(full)
    point = retained_fraction(m, c, f)
    n = len(m)
    if n < 2:
        return point
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    x, y = (m - c)[idx].mean(axis=1), (f - c)[idx].mean(axis=1)
    ok = y != 0
    return Estimate(point.value, float(np.std(x[ok] / y[ok], ddof=1)), n)
