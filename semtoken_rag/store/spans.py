"""Compact word spans: character offsets as deltas in the narrowest unsigned integer (numpy).

Why stored at all: :meth:`FingerprintStore.get_many` receives keys, not texts, so the spans
cannot be recomputed at lookup time.  Why deltas: the offsets ``s0, e0, s1, e1, ...`` of
:func:`~semtoken_rag.core.segment.find_words` grow monotonically and consecutive differences
(word lengths, gaps) are almost always below 256, so a chunk's spans take about 2 bytes per
word instead of 16 (int64).

Format: one byte naming the width (0: uint8, 1: uint16, 2: uint32, 3: absolute int64 for
spans that are not monotonic), then the little-endian values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Width code -> (dtype, largest value).
_WIDTHS: tuple[tuple[np.dtype[Any], int], ...] = (
    (np.dtype("<u1"), 0xFF),
    (np.dtype("<u2"), 0xFFFF),
    (np.dtype("<u4"), 0xFFFFFFFF),
)
_ABSOLUTE = 3


def encode_spans(spans: np.ndarray) -> bytes:
    """``(n, 2)`` integer offsets -> bytes (see the module docstring)."""
    flat = np.ascontiguousarray(spans, dtype=np.int64).reshape(-1)
    deltas = np.diff(flat, prepend=0)
    if len(deltas) == 0 or deltas.min() >= 0:
        top = int(deltas.max()) if len(deltas) else 0
        for code, (dt, largest) in enumerate(_WIDTHS):
            if top <= largest:
                return bytes([code]) + deltas.astype(dt).tobytes()
    return bytes([_ABSOLUTE]) + flat.astype("<i8").tobytes()


def decode_spans(data: bytes, n_words: int) -> np.ndarray:
    """Inverse of :func:`encode_spans`: ``(n_words, 2) int64``.

    Raises:
        ValueError: the bytes do not hold ``n_words`` spans.
    """
    if not data:
        raise ValueError("empty span payload")
    code = data[0]
    body = memoryview(data)[1:]
    dt: np.dtype[Any]
    if code == _ABSOLUTE:
        dt = np.dtype("<i8")
    elif code < len(_WIDTHS):
        dt = _WIDTHS[code][0]
    else:
        raise ValueError(f"unknown span width code {code}")
    if len(body) != 2 * n_words * dt.itemsize:
        raise ValueError(f"span payload of {len(body)} bytes does not hold {n_words} spans")
    values = np.frombuffer(body, dtype=dt).astype(np.int64)
    flat = values if code == _ABSOLUTE else np.cumsum(values)
    return flat.reshape(n_words, 2)
