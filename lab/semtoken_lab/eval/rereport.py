"""Rewrite a run's summary, report and plots from its ``examples.jsonl`` alone.

Why: a long run is looked at while it goes (or after it was stopped), and a report is often
wanted over a subset of its methods or ratios; none of that needs a model or recomputes a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from semtoken_rag.errors import InvalidInputError

from semtoken_lab.eval.methods import RATIO_FREE
from semtoken_lab.eval.records import ExampleRecord, read_records
from semtoken_lab.eval.report import write_outputs
from semtoken_lab.eval.run_config import RunResult, check_names, check_ratios


def complete_examples(records: Sequence[ExampleRecord]) -> list[ExampleRecord]:
    """Records of the examples that have every (method, ratio) key of their dataset.

    A run stopped early (or still going) has some examples scored by only some methods; means
    over different example sets are not comparable, so partial reports keep complete examples.
    """
    keys: dict[str, set[tuple[str, float]]] = {}
    have: dict[tuple[str, str], set[tuple[str, float]]] = {}
    for r in records:
        keys.setdefault(r.dataset, set()).add((r.method, r.ratio))
        have.setdefault((r.dataset, r.example_id), set()).add((r.method, r.ratio))
    return [r for r in records if have[(r.dataset, r.example_id)] >= keys[r.dataset]]


def report_only(
    out: str | Path, methods: Sequence[str] = (), ratios: Sequence[float] = ()
) -> RunResult:
    """Rewrite ``summary.json``, ``report.md`` and plots of ``out`` from its ``examples.jsonl``,
    over complete examples only (see :func:`complete_examples`), restricted to ``methods`` when
    given, and to ``ratios`` (plus the ratio-free ``none`` / ``closed-book``) when given;
    computes nothing new.

    Raises:
        InvalidInputError: ``out`` is not a folder path or holds no ``examples.jsonl``;
            ``methods`` or ``ratios`` given as one string or not names / numbers.
    """
    if not isinstance(out, (str, Path)) or not str(out).strip():
        raise InvalidInputError(f"out must be a folder path, got {out!r:.60}")
    methods = check_names(methods, "methods") if methods else ()
    ratios = check_ratios(ratios, "ratios") if ratios else ()
    folder = Path(out)
    if not (folder / "examples.jsonl").is_file():
        raise InvalidInputError(f"{folder} holds no examples.jsonl: nothing to report")
    records = read_records(folder / "examples.jsonl")
    if methods:
        records = [r for r in records if r.method in set(methods)]
    if ratios:
        wanted = {float(x) for x in ratios}
        records = [r for r in records if r.method in RATIO_FREE or float(r.ratio) in wanted]
    records = complete_examples(records)
    rows = write_outputs(records, folder, methods=methods)
    return RunResult(records=records, new_records=0, out=folder, summary=rows)
