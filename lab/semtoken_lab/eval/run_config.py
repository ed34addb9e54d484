"""What defines an evaluation run (:class:`RunConfig`, checked on construction) and what it
produced (:class:`RunResult`).

Why checked here: a bad field fails in a second with a one-line
:class:`~semtoken_rag.errors.InvalidInputError` naming it, not after the reader has loaded; the
same checks serve ``report_only``'s ``methods`` and ``ratios`` filters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semtoken_rag.errors import InvalidInputError

from semtoken_lab.eval.methods import METHODS
from semtoken_lab.eval.records import AUTO, ExampleRecord

#: Choices of :attr:`RunConfig.fmt` and :attr:`RunConfig.mode`.
FORMATS = ("auto", "longbench", "shared")
MODES = ("context", "rag")
#: Integer fields of :class:`RunConfig`: ``(name, smallest value, None allowed)``.
_COUNTS = (
    ("budget", 1, True), ("limit", 1, True), ("per_doc", 1, True), ("seed", 0, False),
    ("workers", 1, False), ("top_k", 1, False), ("chunk_size", 1, False),
    ("chunk_overlap", 0, False), ("max_context_tokens", 1, True), ("max_answer_words", 1, False),
)  # fmt: skip


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run (written to ``config.json`` in the output folder).

    Attributes:
        data: JSONL files or folders.
        fmt: ``auto``, ``longbench`` or ``shared``.
        mode: ``context`` (each example's own context) or ``rag`` (shared pool + retrieval).
        methods: Method names (see :data:`semtoken_lab.eval.methods.METHODS`).
        ratios: Target ratios of reader tokens kept.
        budget: Absolute token budget instead of ratios (recorded as ``ratio = budget``).
        limit: Examples per data file.
        per_doc: Questions per document at most (spreads a limited run over documents).
        reader: Reader model name.
        reader_dtype: Reader dtype (``auto``, ``float32``, ``bfloat16``, ...).
        out: Output folder.
        resume: Skip (example, method, ratio) keys already in ``examples.jsonl``.
        seed: Seed of the random baseline.
        workers: Examples processed concurrently (threads).
        generate: Generate answers (task metrics, timings); off = log-likelihood + recall only.
        top_k: Chunks retrieved per question in ``rag`` mode.
        chunk_size, chunk_overlap: Word windows of the ``rag`` pool.
        max_context_tokens: Cut every *full* context to this many reader tokens (middle
            truncation) before compressing, for readers with a short window.
        max_answer_words: Gold answers are cut to this many words for the log-likelihood
            (long summaries would otherwise dominate the cost).
        progress: Show a tqdm bar with ETA.
    """

    data: tuple[str, ...]
    out: str
    fmt: str = "auto"
    mode: str = "context"
    methods: tuple[str, ...] = ("none", "closed-book", "embed-filter", "semtoken")
    ratios: tuple[float, ...] = (0.5,)
    budget: int | None = None
    limit: int | None = None
    per_doc: int | None = None
    reader: str = "smollm2"
    reader_dtype: str = "auto"
    resume: bool = False
    seed: int = 0
    workers: int = 1
    generate: bool = True
    top_k: int = 5
    chunk_size: int = 120
    chunk_overlap: int = 60
    max_context_tokens: int | None = None
    max_answer_words: int = 48
    progress: bool = True

    def __post_init__(self) -> None:
        """Check every field (a one-line :class:`~semtoken_rag.errors.InvalidInputError` naming
        it); ``data`` and ``methods`` given as lists are kept as tuples.

        Paths are not opened here (:func:`~semtoken_lab.eval.data.load_examples` does)."""
        object.__setattr__(self, "data", check_names(self.data, "RunConfig.data", paths=True))
        object.__setattr__(self, "methods", check_names(self.methods, "RunConfig.methods"))
        object.__setattr__(self, "ratios", check_ratios(self.ratios, "RunConfig.ratios"))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise InvalidInputError(
                f"RunConfig.methods: unknown {unknown}; choose from {', '.join(METHODS)}"
            )
        for name, choices in (("fmt", FORMATS), ("mode", MODES)):
            if getattr(self, name) not in choices:
                raise InvalidInputError(
                    f"RunConfig.{name} must be one of {choices}, got {getattr(self, name)!r}"
                )
        for name in ("out", "reader", "reader_dtype"):
            value = getattr(self, name)
            if not isinstance(value, (str, Path)) or not str(value).strip():
                raise InvalidInputError(f"RunConfig.{name} must be a non-empty str, got {value!r}")
            object.__setattr__(self, name, str(value))  # str: the config is written as JSON
        for name, low, optional in _COUNTS:
            _check_count(self, name, low, optional)
        if self.chunk_overlap >= self.chunk_size:
            raise InvalidInputError(
                f"RunConfig.chunk_overlap must be below chunk_size {self.chunk_size}, got "
                f"{self.chunk_overlap}"
            )


@dataclass
class RunResult:
    """What a run produced."""

    records: list[ExampleRecord]
    new_records: int
    out: Path
    summary: list[Any] = field(default_factory=list)


def _check_count(cfg: RunConfig, name: str, low: int, optional: bool) -> None:
    """Refuse an integer field below ``low`` (or a bool, float or string posing as one)."""
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(
            f"RunConfig.{name} must be an int >= {low}{' or None' if optional else ''}, "
            f"got {value!r}"
        )


def check_names(values: Any, name: str, *, paths: bool = False) -> tuple[Any, ...]:
    """A non-empty sequence of names (strings, or also paths) as a tuple of strings; one string
    is refused, never split into characters."""
    kinds = (str, Path) if paths else (str,)
    if isinstance(values, (str, bytes, bytearray, Path, Mapping)) or not isinstance(
        values, Iterable
    ):
        raise InvalidInputError(
            f"{name} must be a tuple of {'paths' if paths else 'names'}, got {values!r:.60}"
        )
    items = tuple(values)
    bad = [v for v in items if not isinstance(v, kinds) or not str(v).strip()]
    if bad or not items:
        raise InvalidInputError(
            f"{name} must be a non-empty tuple of {'paths' if paths else 'names'}, "
            f"got {values!r:.60}"
        )
    return tuple(str(v) for v in items)  # str: the config is written as JSON


def check_ratios(values: Any, name: str) -> tuple[float, ...]:
    """Target ratios in (0, 1], or :data:`~semtoken_lab.eval.records.AUTO`."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidInputError(f"{name} must be a tuple of ratios, got {values!r:.60}")
    items = tuple(values)
    ok = [
        not isinstance(r, bool)
        and isinstance(r, (int, float))
        and (r == AUTO or (math.isfinite(r) and 0.0 < r <= 1.0))
        for r in items
    ]
    if not items or not all(ok):
        raise InvalidInputError(
            f"{name} must be ratios in (0, 1] or AUTO ({AUTO}), got {values!r:.60}"
        )
    return tuple(float(r) for r in items)
