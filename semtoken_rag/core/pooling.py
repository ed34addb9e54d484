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
    return np.add.reduceat(x, starts, axis=0)


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


def pool_tokens_to_words(
    token_vectors: np.ndarray, token_word: np.ndarray, n_words: int
) -> np.ndarray:
    """Mean of the token vectors of each word; words without a token borrow the nearest one.

    Args:
        token_vectors: ``(n_tokens, d) float32`` contextual token states.
        token_word: ``(n_tokens,) int64`` word index of each token, non-decreasing, in
            ``[0, n_words)``.
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
    starts = np.searchsorted(token_word, present, side="left")
    out[present] = segment_sums(token_vectors.astype(np.float32, copy=False), starts)
    out[present] /= counts[present, None].astype(np.float32)
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        # A word the tokenizer dropped (control characters, unknown symbols): nearest word's
        # vector, so every word keeps a fingerprint and spans stay contiguous.
        pos = np.searchsorted(present, missing).clip(0, len(present) - 1)
        out[missing] = out[present[pos]]
    return out
