"""Typed records of a run and their JSONL file (append, flush, resume).

Why JSONL appended line by line: a run of hours can be killed at any point; every finished
(example, method, ratio) is on disk at once and ``--resume`` skips exactly those keys.  A torn
last line (killed mid-write) is ignored on reading, so it is simply recomputed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Key = tuple[str, str, str, float]

#: The ``ratio`` of records of ``compression_ratio="auto"`` runs (``--ratio auto``): each example
#: keeps what the engine chose; ``achieved_ratio`` says how much.  A number so that records,
#: keys and sorting stay numeric; shown as ``auto`` everywhere (:func:`ratio_label`).
AUTO = -1.0


def ratio_label(ratio: float) -> str:
    """``auto`` for :data:`AUTO`, else the ratio (``0.5``)."""
    return "auto" if ratio == AUTO else f"{ratio:g}"


def runs_auto(method: str) -> bool:
    """Whether a method can run with the ``auto`` budget (the SemToken variants)."""
    return method.startswith("semtoken")


@dataclass(frozen=True)
class ExampleRecord:
    """One example compressed by one method at one target ratio, then read.

    Attributes:
        example_id, dataset, method: What was run.
        ratio: Target ratio (``1.0`` for ``none``, ``0.0`` for ``closed-book``).
        mode: ``context`` or ``rag``.
        tokens_full: Reader tokens of the full context (after any window truncation).
        tokens_kept: Reader tokens of the compressed context.
        achieved_ratio: ``tokens_kept / tokens_full``.
        budget: Token budget the method was given.
        compress_ms: Wall time of the compression call.
        answer_loglik: Mean log-prob per token of the first gold answer (teacher forced).
        answer_loglik_total: Its sum.
        gold_in_full: Whether a gold answer occurs (normalised) in the full context.
        answer_recall: Whether it still occurs in the compressed one (``None`` if not in full).
        prediction: Generated answer (``None`` with ``--no-generate``).
        metric: Task metric name; ``score`` its value on the prediction.
        f1, em, rouge_l, accuracy: Task-independent views of the prediction.
        prompt_tokens, prefill_ms, ttft_ms, decode_ms_per_token, new_tokens, kv_bytes: Reader
            cost of the generation (0 without generation).
    """

    example_id: str
    dataset: str
    method: str
    ratio: float
    mode: str
    tokens_full: int
    tokens_kept: int
    achieved_ratio: float
    budget: int
    compress_ms: float
    answer_loglik: float | None = None
    answer_loglik_total: float | None = None
    gold_in_full: bool = False
    answer_recall: bool | None = None
    prediction: str | None = None
    metric: str = ""
    score: float | None = None
    f1: float | None = None
    em: float | None = None
    rouge_l: float | None = None
    accuracy: float | None = None
    prompt_tokens: int = 0
    prefill_ms: float = 0.0
    ttft_ms: float = 0.0
    decode_ms_per_token: float = 0.0
    new_tokens: int = 0
    kv_bytes: int = 0

    @property
    def key(self) -> Key:
        return (self.dataset, self.example_id, self.method, round(self.ratio, 4))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExampleRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def record_key(dataset: str, example_id: str, method: str, ratio: float) -> Key:
    """The resume key of a record."""
    return (dataset, example_id, method, round(ratio, 4))


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, JSON value)`` of each line of ``path``; a torn or unreadable line is
    skipped with a warning (a run killed mid-write leaves one; resuming recomputes it)."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                logger.warning("%s:%d: skipping unreadable record (%s)", path, lineno, exc)


def read_records(path: str | Path) -> list[ExampleRecord]:
    """All complete records of a JSONL file (a torn last line is skipped with a warning)."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for lineno, value in read_jsonl(p):
        try:
            out.append(ExampleRecord.from_dict(value))
        except (TypeError, AttributeError) as exc:  # missing fields, or not an object
            logger.warning("%s:%d: skipping unreadable record (%s)", p, lineno, exc)
    return out


class RecordWriter:
    """Appends records to a JSONL file, one flushed (and fsynced) line each; thread-safe.

    A torn last line left by a killed run is cut off when the writer opens the file, so new
    records never get glued to a fragment.
    """

    def __init__(self, path: str | Path, *, append: bool) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append and self.path.is_file():
            cut_torn_tail(self.path)
        self._fh = self.path.open("a" if append else "w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, rec: ExampleRecord) -> None:
        line = json.dumps(asdict(rec), ensure_ascii=False)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        with self._lock:
            self._fh.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cut_torn_tail(path: Path) -> None:
    """Cut a torn last line (a run killed mid-write) off the JSONL file ``path``, so that
    appended lines never get glued to the fragment."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        logger.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - cut)
        with path.open("r+b") as fh:
            fh.truncate(cut)


def record_example(rec: dict[str, Any]) -> tuple[str | None, str]:
    """``(dataset, id)`` of a record: what tells its example apart, since ids repeat across
    datasets.  One rule for the resume (:func:`semtoken_lab.eval.kv_eval._done`) and the report
    (:mod:`semtoken_lab.eval.kv_report`), so both see the same examples.  A record written before
    every record named its dataset keys as ``(None, id)``; it counts for every dataset's example
    with that id (see :func:`semtoken_lab.eval.kv_eval._done`)."""
    ds = rec.get("dataset")
    return (None if ds is None else str(ds), str(rec["id"]))
