"""Evaluation examples: one typed record, loaded from LongBench files or the shared JSONL sets.

Why one record type: every method, metric and report downstream must not care where an example
came from.  Two on-disk schemas exist here:

* **LongBench** (THUDM): ``input, context, answers, length, dataset, language, all_classes, _id``.
  The metric is fixed per dataset by LongBench's own ``dataset2metric`` table, reproduced in
  :data:`LONGBENCH_METRIC`; the prompt family per dataset in :data:`LONGBENCH_FAMILY`.
* **shared** (``../shared/data``): ``id, context, question, answers, set, dataset`` plus per-set
  extras (``options``/``answer_label`` for multiple choice, ``evaluation`` for L-Eval).

:func:`detect_format` tells them apart from the first line, so ``--format auto`` works.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from semtoken_rag.errors import InvalidInputError

logger = logging.getLogger(__name__)

TaskFamily = Literal["qa", "summarization", "multiple_choice"]
Format = Literal["auto", "longbench", "shared"]

#: LongBench's ``dataset2metric`` (pred.py / eval.py), dataset name -> metric name in
#: :data:`semtoken_lab.eval.metrics.METRICS`.
LONGBENCH_METRIC: dict[str, str] = {
    "narrativeqa": "qa_f1",
    "qasper": "qa_f1",
    "multifieldqa_en": "qa_f1",
    "multifieldqa_zh": "qa_f1_zh",
    "hotpotqa": "qa_f1",
    "2wikimqa": "qa_f1",
    "musique": "qa_f1",
    "dureader": "rouge_zh",
    "gov_report": "rouge",
    "qmsum": "rouge",
    "multi_news": "rouge",
    "vcsum": "rouge_zh",
    "trec": "classification",
    "triviaqa": "qa_f1",
    "samsum": "rouge",
    "lsht": "classification",
    "passage_retrieval_en": "retrieval",
    "passage_count": "count",
    "passage_retrieval_zh": "retrieval_zh",
    "lcc": "code_sim",
    "repobench-p": "code_sim",
}

#: Prompt family of each LongBench dataset (what the reader is asked to do).
LONGBENCH_FAMILY: dict[str, TaskFamily] = {
    **dict.fromkeys(LONGBENCH_METRIC, "qa"),
    **dict.fromkeys(("gov_report", "qmsum", "multi_news", "vcsum", "samsum"), "summarization"),
}

#: Metric of the shared sets, by dataset prefix (L-Eval's own ``evaluation`` tag decides for
#: L-Eval lines when present: ``exam`` -> multiple choice, ``rouge`` -> rouge, else F1).
SHARED_METRIC: dict[str, str] = {
    "narrativeqa": "qa_f1",
    "hotpotqa_dev_sample": "qa_f1",
    "quality": "mc_accuracy",
    "loogle": "qa_f1",
    "leval": "qa_f1",
}

_METRIC_FAMILY: dict[str, TaskFamily] = {
    "rouge": "summarization",
    "rouge_zh": "summarization",
    "mc_accuracy": "multiple_choice",
}


@dataclass(frozen=True)
class Example:
    """One question over one context, whatever the source schema.

    Attributes:
        id: Unique id within the dataset.
        dataset: Dataset name (``narrativeqa``, ``leval/financial_qa``, a LongBench task, ...).
        context: The long text the question is about.
        question: The question or instruction (LongBench ``input``).
        answers: Gold answers (any one counts).
        task_family: Prompt family for the reader: ``qa``, ``summarization`` or
            ``multiple_choice``.
        metric: Name of the task metric in :data:`semtoken_lab.eval.metrics.METRICS`.
        options: Answer options for multiple choice (texts, in letter order).
        all_classes: LongBench ``all_classes`` (classification tasks).
        length: Context length as given by the source (LongBench ``length``; words otherwise).
        language: ``en`` / ``zh``.
    """

    id: str
    dataset: str
    context: str
    question: str
    answers: tuple[str, ...]
    task_family: TaskFamily = "qa"
    metric: str = "qa_f1"
    options: tuple[str, ...] = ()
    all_classes: tuple[str, ...] = ()
    length: int = 0
    language: str = "en"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _as_list(value: Any) -> list[Any]:
    """LongBench/L-Eval sometimes store lists as Python-literal or JSON strings."""
    if value is None:
        return []
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            for parse in (json.loads, ast.literal_eval):
                try:
                    out = parse(s)
                except (ValueError, SyntaxError):
                    continue
                if isinstance(out, list):
                    return out
        return [value]
    return list(value)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each non-blank line; one-line typed errors naming the line
    for anything that is not a UTF-8 JSON object."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInputError(
                    f"{path}:{lineno}: not valid UTF-8 (byte {exc.start})"
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{lineno}: not JSON: {exc.msg}") from None
            except RecursionError:
                raise InvalidInputError(f"{path}:{lineno}: JSON nested too deeply") from None
            if not isinstance(row, dict):
                raise InvalidInputError(
                    f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}"
                )
            yield lineno, row


def _text_field(row: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise ValueError(f"missing {key!r}")
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key in ("id", "_id"):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, got {type(value).__name__}")
    return value


def _strings(row: dict[str, Any], key: str) -> tuple[str, ...]:
    value = row.get(key)
    if value is None:
        return ()
    items = _as_list(value) if isinstance(value, (str, list, tuple)) else None
    if items is None or not all(isinstance(a, (str, int, float)) for a in items):
        raise ValueError(f"{key!r} must be a string or a list of strings, got {value!r:.60}")
    return tuple(str(a) for a in items)


def detect_format(row: dict[str, Any]) -> Format:
    """``longbench`` when the row has LongBench's keys (``input`` and ``_id``), else ``shared``."""
    if "input" in row and "_id" in row:
        return "longbench"
    if "question" in row and "id" in row:
        return "shared"
    raise InvalidInputError(
        f"unknown example schema (keys {sorted(row)}); expected LongBench "
        "(input, context, answers, _id, ...) or shared (id, context, question, answers, ...)"
    )


def from_longbench(row: dict[str, Any]) -> Example:
    """One LongBench line as an :class:`Example` (metric from LongBench's table)."""
    dataset = str(row.get("dataset") or "")
    base = dataset.removesuffix("_e")  # LongBench-E files use "<task>_e"
    metric = LONGBENCH_METRIC.get(base, "qa_f1")
    length = row.get("length") or 0
    if isinstance(length, bool) or not isinstance(length, (int, float)):
        raise ValueError(f"'length' must be a number, got {length!r:.60}")
    return Example(
        id=_text_field(row, "_id", required=True),
        dataset=dataset,
        context=_text_field(row, "context"),
        question=_text_field(row, "input"),
        answers=_strings(row, "answers"),
        task_family=LONGBENCH_FAMILY.get(base, "qa"),
        metric=metric,
        all_classes=_strings(row, "all_classes"),
        length=int(length),
        language=str(row.get("language") or "en"),
    )


def _shared_metric(row: dict[str, Any]) -> str:
    dataset = str(row.get("dataset") or "")
    if row.get("options"):
        return "mc_accuracy"
    evaluation = row.get("evaluation")
    if dataset.startswith("leval/") and evaluation == "rouge":
        return "rouge"
    return SHARED_METRIC.get(dataset.split("/")[0], "qa_f1")


def from_shared(row: dict[str, Any]) -> Example:
    """One line of a ``../shared/data`` set as an :class:`Example`."""
    metric = _shared_metric(row)
    context = _text_field(row, "context")
    keys = ("answer_label", "evidence", "doc_id", "document_id")
    extra: dict[str, Any] = {k: row[k] for k in keys if k in row}
    return Example(
        id=_text_field(row, "id", required=True),
        dataset=str(row.get("dataset") or ""),
        context=context,
        question=_text_field(row, "question"),
        answers=_strings(row, "answers"),
        task_family=_METRIC_FAMILY.get(metric, "qa"),
        metric=metric,
        options=_strings(row, "options"),
        length=len(context.split()),
        extra=extra,
    )


_CONVERTERS = {"longbench": from_longbench, "shared": from_shared}


def document_key(ex: Example) -> str:
    """Which document an example asks about (source id if given, else a hash of the context)."""
    for key in ("doc_id", "document_id"):
        if ex.extra.get(key):
            return str(ex.extra[key])
    return hashlib.sha1(ex.context.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def load_examples(
    paths: Sequence[str | Path] | str | Path,
    *,
    fmt: Format = "auto",
    limit: int | None = None,
    per_doc: int | None = None,
) -> list[Example]:
    """Examples of one or more JSONL files, in file order.

    Args:
        paths: JSONL files, or folders (every ``*.jsonl`` inside, sorted); one path alone too.
        fmt: ``auto`` detects the schema per file from its first line.
        limit: Keep at most this many examples *per file* (the first ones).
        per_doc: Keep at most this many questions per document, so a limited run spreads over
            many documents (NarrativeQA's first 150 lines cover only ~5 summaries).

    Raises:
        InvalidInputError: one line naming the file and line: a missing or empty file, a line
            that is not a UTF-8 JSON object, an unknown schema, or a field of the wrong type
            (``"answers": 9``).
    """
    out: list[Example] = []
    for path in _expand(paths):
        taken = 0
        convert = None
        seen: dict[str, int] = {}
        for lineno, row in _iter_jsonl(path):
            try:
                if convert is None:
                    convert = _CONVERTERS[detect_format(row) if fmt == "auto" else fmt]
                ex = convert(row)
            except (ValueError, KeyError, TypeError) as exc:
                msg = exc.args[0] if isinstance(exc, InvalidInputError) else str(exc)
                raise InvalidInputError(f"{path}:{lineno}: {msg}") from None
            if per_doc is not None:
                doc = document_key(ex)
                if seen.get(doc, 0) >= per_doc:
                    continue
                seen[doc] = seen.get(doc, 0) + 1
            out.append(ex)
            taken += 1
            if limit is not None and taken >= limit:
                break
        if convert is None:
            raise InvalidInputError(f"{path}: no examples (the file is empty)")
        logger.info("loaded %d examples from %s", taken, path)
    return out


def _expand(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    if isinstance(paths, (str, Path)):  # one path is one path, never its characters
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.jsonl")))
        elif p.is_file():
            files.append(p)
        else:
            raise InvalidInputError(f"no such data file or folder: {p}")
    if not files:
        raise InvalidInputError(f"no .jsonl files in {list(paths)}")
    return files


def to_longbench_row(ex: Example, dataset: str | None = None) -> dict[str, Any]:
    """An :class:`Example` in LongBench's line schema (for tests and interchange)."""
    return {
        "input": ex.question,
        "context": ex.context,
        "answers": list(ex.answers),
        "length": ex.length or len(ex.context.split()),
        "dataset": dataset or ex.dataset,
        "language": ex.language,
        "all_classes": list(ex.all_classes) or None,
        "_id": ex.id,
    }


def write_longbench(
    examples: Iterable[Example], path: str | Path, *, dataset: str | None = None
) -> int:
    """Write ``examples`` as a LongBench-schema JSONL file; returns the number of lines."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(to_longbench_row(ex, dataset), ensure_ascii=False) + "\n")
            n += 1
    return n
