"""Segment means: the one pooling primitive (tokens -> words, words -> units, units -> spans)."""

from __future__ import annotations

import numpy as np


def segment_sums(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of consecutive row segments.

    Args:
        x: ``(n, d)`` or ``(n,)`` array.
        starts: ``(k,) int64`` strictly increasing segment starts, ``starts[0] == 0``; segment
            ``i`` is ``x[starts[i]:starts[i+1]]`` (the last one runs to ``n``).

    Returns:
        ``(k, d)`` (or ``(k,)``) sums, in ``x``'s dtype.
    """
    if len(starts) == 0:
        return np.zeros((0, *x.shape[1:]), dtype=x.dtype)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating) or len(starts) < 32:
        return np.add.reduceat(x, starts, axis=0)
    return _blocked_segment_sums(x, np.asarray(starts, dtype=np.int64))


def _blocked_segment_sums(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``np.add.reduceat(x, starts, axis=0)`` as small 0/1 matrix products (BLAS).

    ``reduceat`` over 2-D rows is slow (microseconds per row). Rows are cut into blocks of ~4
    average segments, each one ``(segments_in_block, B) @ (B, d)`` product.
    """
    n, d = x.shape
    k = len(starts)
    seg = np.repeat(np.arange(k, dtype=np.int64), segment_lengths(starts, n))
    block = int(np.clip(4 * n // k, 32, 2048))
    out = np.zeros((k, d), dtype=x.dtype)
    cols = np.arange(block)
    for lo in range(0, n, block):
        s = seg[lo : lo + block]
        first = int(s[0])
        m = int(s[-1]) - first + 1
        ind = np.zeros((m, len(s)), dtype=x.dtype)
        ind[s - first, cols[: len(s)]] = 1
        out[first : first + m] += ind @ x[lo : lo + block]
    return out


def segment_lengths(starts: np.ndarray, n: int) -> np.ndarray:
    """``(k,) int64`` lengths of the segments that start at ``starts`` in a sequence of ``n``."""
    return np.diff(np.append(starts, n)).astype(np.int64)


def segment_means(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Means of consecutive row segments (see :func:`segment_sums`); ``(k, d) float32``."""
    sums = segment_sums(x.astype(np.float32, copy=False), starts)
    lengths = segment_lengths(starts, len(x)).astype(np.float32)
    return sums / lengths.reshape(-1, *([1] * (sums.ndim - 1)))


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero); ``float32``."""
    x = x.astype(np.float32, copy=False)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def unit_rows(x: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """``x`` with every nonzero row at unit L2 norm, for any finite values (``float32``).

    Thresholds are cosines and epsilons absolute, so norms must be 1. Rows are scaled by their
    peak first (no overflow); normalised rows (within ``tol``, or zero) are returned as they are.

    Args:
        x: ``(..., d)`` finite real vectors (rows along the last axis).

    Returns:
        ``(..., d) float32``, zero rows left zero.
    """
    if x.size == 0:
        return x.astype(np.float32, copy=False)
    flat = x.reshape(-1, x.shape[-1])
    with np.errstate(over="ignore"):  # a float64 row of 1e200 is rescaled below
        norms = np.sqrt(np.einsum("ij,ij->i", flat, flat, dtype=np.float64))
    if np.all((np.abs(norms - 1.0) <= tol) | (norms == 0.0)):
        return x.astype(np.float32, copy=False)
    peak = np.abs(flat).max(axis=1, keepdims=True)
    y = (flat / np.where(peak > 0, peak, 1)).astype(np.float32)  # entries in [-1, 1]
    y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1.0)  # >= 1 unless zero
    return y.reshape(x.shape)


def pool_tokens_to_words(
    token_vectors: np.ndarray, token_word: np.ndarray, n_words: int
) -> np.ndarray:
    """Mean of the token vectors of each word; words without a token borrow the nearest one.

    Args:
        token_vectors: ``(n_tokens, d) float32`` contextual token states.
        token_word: ``(n_tokens,) int64`` word of each token, non-decreasing, in ``[0, n_words)``.
        n_words: Number of words.

    Returns:
        ``(n_words, d) float32`` word vectors (not normalised).
    """
    d = token_vectors.shape[1]
    out = np.zeros((n_words, d), dtype=np.float32)
    if n_words == 0 or len(token_word) == 0:
        return out
    counts = np.bincount(token_word, minlength=n_words)
    present = np.flatnonzero(counts)
    out[present] = segment_means(token_vectors, np.searchsorted(token_word, present))
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        # A word the tokenizer dropped: the nearest word's vector, so every word has one.
        pos = np.searchsorted(present, missing).clip(0, len(present) - 1)
        out[missing] = out[present[pos]]
    return out
