"""Validation of what users pass to the engine: typed errors, never a crash deep in numpy or torch.

Lone surrogates (``"\\ud800"``, from broken PDFs or ``surrogateescape``) fail in the Rust
tokenizers, so the engine computes on a copy with each replaced by U+FFFD (same offsets) and
renders the kept pieces from the text *as given*.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from semtoken_rag.errors import ConfigError, InvalidInputError
from semtoken_rag.fingerprints import MAX_START, ChunkSource

_SURROGATE = re.compile("[\ud800-\udfff]")


def model_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (same offsets; ``text`` itself if none)."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def check_chunks(chunks: Any) -> list[str]:
    if chunks is None:
        raise InvalidInputError("chunks must be a string or a sequence of strings, got None")
    if isinstance(chunks, str):
        return [chunks]
    if isinstance(chunks, (bytes, bytearray)):
        raise InvalidInputError("chunks must be str, not bytes: decode them first")
    if isinstance(chunks, Mapping):
        raise InvalidInputError("chunks must be a sequence of strings, not a mapping")
    try:
        items = list(chunks)
    except TypeError:
        raise InvalidInputError(
            f"chunks must be a string or a sequence of strings, got {type(chunks).__name__}"
        ) from None
    for i, c in enumerate(items):
        if not isinstance(c, str):
            raise InvalidInputError(f"chunk {i} is {type(c).__name__}, expected str")
    return items


def check_query(query: Any) -> str | None:
    if query is None:
        return None
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string or None, got {type(query).__name__}")
    # An empty or blank query carries no information: treated as no query (documented).
    return query if query.strip() else None


def check_budget(ratio: Any, budget: Any) -> tuple[float | str | None, int | None]:
    """Validate a per-call ratio and budget; numpy scalars are accepted and made plain.

    A budget larger than the context is valid (everything fits); it is clamped where used.

    Returns:
        ``(ratio, budget)`` as ``float`` (or ``"auto"``) / ``int`` (or ``None``).
    """
    if isinstance(ratio, str) and ratio == "auto":
        if budget is not None:
            raise InvalidInputError(
                "ratio='auto' chooses the budget itself; it cannot be combined with "
                f"budget={budget!r}"
            )
        return ratio, None
    if ratio is not None:
        x = _as_float(ratio)
        if not 0.0 < x <= 1.0:  # also refuses NaN
            raise InvalidInputError(
                f"ratio must be a number in (0, 1] or 'auto', got {_shown(ratio)}"
            )
        ratio = x
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget <= 0:
            raise InvalidInputError(f"budget must be a positive int of tokens, got {budget!r}")
        budget = int(budget)
    return ratio, budget


#: A :meth:`Compressor.compress_many` request: ``(chunks, query)`` or ``(chunks, query, sources)``.
Request = tuple[Any, ...]


def check_sources(sources: Any, n_chunks: int) -> list[ChunkSource | None] | None:
    """Validate per-chunk sources: ``None``, or one :class:`ChunkSource` (or ``None``) per chunk.

    Fields are checked too (they reach SQL parameters and offset arithmetic): ``document`` a
    ``str`` or ``None``, ``start`` an int in ``[0, 2**63 - 1]`` (not a bool) or ``None``; returned
    as plain ``str``/``int``.

    Raises:
        InvalidInputError: not a sequence of that length, or an item or field of another type
            or range.
    """
    if sources is None:
        return None
    if isinstance(sources, (str, bytes, ChunkSource, Mapping)) or not isinstance(sources, Sequence):
        raise InvalidInputError(
            "sources must be a sequence of ChunkSource (one per chunk), got "
            f"{type(sources).__name__}"
        )
    if len(sources) != n_chunks:
        raise InvalidInputError(f"{len(sources)} sources for {n_chunks} chunks")
    out: list[ChunkSource | None] = []
    for i, s in enumerate(sources):
        if s is not None and not isinstance(s, ChunkSource):
            raise InvalidInputError(f"source {i} is a {type(s).__name__}, not a ChunkSource")
        if s is None:
            out.append(None)
            continue
        doc, start = s.document, s.start
        if doc is not None and not isinstance(doc, str):
            raise InvalidInputError(f"source {i}: document must be a str or None, got {doc!r:.60}")
        if start is not None and (
            isinstance(start, bool)
            or not isinstance(start, numbers.Integral)
            or not 0 <= start <= MAX_START
        ):
            raise InvalidInputError(
                f"source {i}: start must be a character offset (an int in [0, 2**63 - 1]) or None, "
                f"got {start!r:.60}"
            )
        # Plain str/int for SQLite (numpy scalars from pandas); surrogates as U+FFFD, as stored.
        doc = None if doc is None else model_text(str(doc))
        start = None if start is None else int(start)
        out.append(dataclasses.replace(s, document=doc, start=start))
    return out


def check_requests(
    requests: Any,
) -> list[tuple[list[str], str | None, list[ChunkSource | None] | None]]:
    """Validate :meth:`Compressor.compress_many` requests (any iterable but a string)."""
    if isinstance(requests, (str, bytes, bytearray, Mapping)) or not isinstance(requests, Iterable):
        raise InvalidInputError(
            f"requests must be a sequence of (chunks, query) pairs, got {type(requests).__name__}"
        )
    out = []
    for i, req in enumerate(list(requests)):
        if not isinstance(req, (tuple, list)) or len(req) not in (2, 3):
            raise InvalidInputError(
                f"request {i} must be a (chunks, query) pair or (chunks, query, sources) triple"
            )
        chunks = check_chunks(req[0])
        sources = check_sources(req[2] if len(req) == 3 else None, len(chunks))
        out.append((chunks, check_query(req[1]), sources))
    return out


def check_scores(scores: Any, n_units: int) -> Any:
    """External unit scores as a ``(n_units,) float64`` array of finite numbers.

    Raises:
        InvalidInputError: not numbers, another length, or a NaN/infinity.
    """
    import numpy as np

    try:
        ext = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"scores must be {n_units} finite numbers (one per unit), got {type(scores).__name__}"
        ) from None
    if len(ext) != n_units or not np.isfinite(ext).all():
        raise InvalidInputError(
            f"scores must be {n_units} finite numbers (one per unit), got {len(ext)}"
        )
    return ext


def check_strings(values: Any, what: str) -> list[str]:
    """A sequence (or iterable) of strings as a list; one string is refused, never iterated.

    Raises:
        InvalidInputError: naming ``what`` and the offending value or item.
    """
    if isinstance(values, (str, bytes, bytearray, Mapping)):
        raise InvalidInputError(
            f"{what} must be a sequence of strings, got one {type(values).__name__}"
        )
    try:
        items = list(values)
    except TypeError:
        raise InvalidInputError(
            f"{what} must be a sequence of strings, got {type(values).__name__}"
        ) from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidInputError(f"{what}[{i}] is a {type(item).__name__}, not a str")
    return items


def _as_float(value: Any) -> float:
    """A real number (not a bool) as a float; else NaN, or inf past float range: both refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _shown(value: Any) -> str:
    """``repr`` of a bad value for a message; an int too long to print by its bit size."""
    try:
        return repr(value)
    except ValueError:
        return f"an int of {value.bit_length()} bits"


def check_number(value: Any, what: str, low: float, *, open_low: bool = False) -> float:
    """A finite real number ``>= low`` (``> low`` with ``open_low``); bool refused.

    Raises:
        InvalidInputError: naming ``what`` and the value.
    """
    x = _as_float(value)
    if not math.isfinite(x) or x < low or (open_low and x == low):
        bound = f"> {low:g}" if open_low else f">= {low:g}"
        raise InvalidInputError(f"{what} must be a finite number {bound}, got {_shown(value)}")
    return x


def check_part(part: Any, what: str, methods: tuple[str, ...]) -> None:
    """Refuse an engine part (encoder, store, counter) lacking the methods the engine calls.

    Raises:
        ConfigError: naming ``what``, the methods and the type given.
    """
    if part is None:
        return
    missing = [m for m in methods if not callable(getattr(part, m, None))]
    if missing:
        raise ConfigError(
            f"{what} must implement {'/'.join(methods)}, got {type(part).__name__} "
            f"(missing {'/'.join(missing)})"
        )


def check_text(text: Any, what: str = "text") -> str:
    """One text (``str``); a list, bytes or anything else is refused.

    Raises:
        InvalidInputError: naming ``what`` and the type given.
    """
    if not isinstance(text, str):
        hint = ": decode them first" if isinstance(text, (bytes, bytearray)) else ""
        raise InvalidInputError(f"{what} must be one str, got {type(text).__name__}{hint}")
    return text


def check_store_args(
    path: Any, touch_interval: Any, lock_timeout: Any, verify_on_open: Any
) -> tuple[float, float]:
    """Check the :class:`~semtoken_rag.store.FingerprintStore` arguments not checked where used;
    returns both durations (finite seconds ``>= 0``) as floats.

    Raises:
        InvalidInputError: naming the argument and the value.
    """
    import os

    if path is not None and (isinstance(path, bytes) or not isinstance(path, (str, os.PathLike))):
        raise InvalidInputError(f"path must be a str, a Path or None, got {path!r:.60}")
    if isinstance(path, str) and not path:  # "" would be the current directory
        raise InvalidInputError(
            f"path must name a directory, got {path!r:.60} (None keeps the store in memory)"
        )
    if "\0" in os.fspath(path or ""):
        raise InvalidInputError(f"path must not contain a NUL character, got {path!r:.60}")
    if verify_on_open is not None and not isinstance(verify_on_open, bool):
        raise InvalidInputError(
            f"verify_on_open must be True, False or None, got {verify_on_open!r}"
        )
    return (
        check_number(touch_interval, "touch_interval", 0.0),
        check_number(lock_timeout, "lock_timeout", 0.0),
    )
