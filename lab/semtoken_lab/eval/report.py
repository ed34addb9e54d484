"""From records to ``summary.json`` rows and ``report.md`` tables (ties marked).

Quality is compared *paired*: for each (dataset, method, ratio) the examples that also have the
``none`` (full context) and ``closed-book`` records give the log-likelihood delta against the full
context and the retained fraction ``(LL_method - LL_closed) / (LL_full - LL_closed)``, each with
an SE.  In the head-to-head table every method is compared with ``semtoken`` at the same ratio;
a difference under 2 SE is printed as a tie.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from semtoken_lab.eval.records import ExampleRecord, ratio_label
from semtoken_lab.eval.stats import Estimate, mean_se, paired_delta, retained_fraction

logger = logging.getLogger(__name__)

REFERENCE_METHOD = "semtoken"


@dataclass(frozen=True)
class SummaryRow:
    """Aggregates of one (dataset, method, target ratio); NaN where not measured."""

    dataset: str
    method: str
    ratio: float
    n: int
    answer_loglik: float
    answer_loglik_se: float
    loglik_delta: float
    loglik_delta_se: float
    loglik_retained: float
    loglik_retained_se: float
    answer_recall: float
    recall_n: int
    f1: float
    f1_se: float
    em: float
    rouge_l: float
    accuracy: float
    score: float
    tokens_full: float
    tokens_kept: float
    achieved_ratio: float
    achieved_ratio_max_dev: float
    compress_ms_per_1k: float
    prefill_ms: float
    ttft_ms: float
    decode_ms_per_token: float
    kv_bytes: float


def _mean(values: Sequence[float | None]) -> float:
    v = [float(x) for x in values if x is not None]
    return float(np.mean(v)) if v else math.nan


def summarize(records: Sequence[ExampleRecord]) -> list[SummaryRow]:
    """One :class:`SummaryRow` per (dataset, method, ratio), in first-seen order."""
    groups: dict[tuple[str, str, float], list[ExampleRecord]] = defaultdict(list)
    ll: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in records:
        groups[(r.dataset, r.method, r.ratio)].append(r)
        if r.method in ("none", "closed-book") and r.answer_loglik is not None:
            ll[(r.dataset, r.method)][r.example_id] = r.answer_loglik
    return [
        _summary_row(key, recs, ll.get((key[0], "none"), {}), ll.get((key[0], "closed-book"), {}))
        for key, recs in groups.items()
    ]


def _loglik_vs_references(
    own: dict[str, float], full: dict[str, float], closed: dict[str, float]
) -> tuple[Estimate, Estimate]:
    """Paired log-likelihood delta against the full context and retained fraction.

    Why paired: each is computed over the examples that also have the reference records (the
    full context; for the fraction the closed book too), so example difficulty cancels out.

    Args:
        own, full, closed: Example id -> per-token log-likelihood of the method, of ``none``
            and of ``closed-book``.

    Returns:
        ``(delta, retained)``; NaN with ``n = 0`` where no example has the references.
    """
    ids = sorted(set(own) & set(full))
    delta = (
        paired_delta([own[i] for i in ids], [full[i] for i in ids])
        if ids
        else Estimate(math.nan, math.nan, 0)
    )
    ids3 = sorted(set(own) & set(full) & set(closed))
    retained = (
        retained_fraction(
            [own[i] for i in ids3], [closed[i] for i in ids3], [full[i] for i in ids3]
        )
        if ids3
        else Estimate(math.nan, math.nan, 0)
    )
    return delta, retained


def _summary_row(
    key: tuple[str, str, float],
    recs: Sequence[ExampleRecord],
    full: dict[str, float],
    closed: dict[str, float],
) -> SummaryRow:
    """The aggregates of one (dataset, method, ratio) group, ``full`` and ``closed`` being the
    dataset's ``none`` and ``closed-book`` log-likelihoods by example id."""
    dataset, method, ratio = key
    own = {r.example_id: r.answer_loglik for r in recs if r.answer_loglik is not None}
    delta, ret = _loglik_vs_references(own, full, closed)
    llm = mean_se(list(own.values()))
    rec_vals = [r.answer_recall for r in recs if r.answer_recall is not None]
    f1 = mean_se([r.f1 for r in recs if r.f1 is not None])
    target = [abs(r.achieved_ratio - r.ratio) for r in recs if 0 < r.ratio <= 1]
    generated = [r for r in recs if r.prediction is not None]
    return SummaryRow(
        dataset=dataset,
        method=method,
        ratio=ratio,
        n=len(recs),
        answer_loglik=llm.value,
        answer_loglik_se=llm.se,
        loglik_delta=delta.value,
        loglik_delta_se=delta.se,
        loglik_retained=ret.value,
        loglik_retained_se=ret.se,
        answer_recall=_mean([float(v) for v in rec_vals]),
        recall_n=len(rec_vals),
        f1=f1.value,
        f1_se=f1.se,
        em=_mean([r.em for r in recs]),
        rouge_l=_mean([r.rouge_l for r in recs]),
        accuracy=_mean([r.accuracy for r in recs]),
        score=_mean([r.score for r in recs]),
        tokens_full=_mean([r.tokens_full for r in recs]),
        tokens_kept=_mean([r.tokens_kept for r in recs]),
        achieved_ratio=_mean([r.achieved_ratio for r in recs]),
        achieved_ratio_max_dev=max(target) if target else math.nan,
        compress_ms_per_1k=_mean(
            [r.compress_ms / r.tokens_full * 1e3 for r in recs if r.tokens_full]
        ),
        prefill_ms=_mean([r.prefill_ms for r in generated]),
        ttft_ms=_mean([r.ttft_ms for r in generated]),
        decode_ms_per_token=_mean([r.decode_ms_per_token for r in generated]),
        kv_bytes=_mean([r.kv_bytes for r in generated]),
    )


def head_to_head(
    records: Sequence[ExampleRecord], reference: str = REFERENCE_METHOD
) -> list[tuple[str, str, float, Estimate, Estimate]]:
    """Paired differences ``method - reference`` at equal (dataset, ratio).

    Returns:
        ``(dataset, method, ratio, loglik delta, recall delta)`` per compared method.
    """
    by: dict[tuple[str, str, float], dict[str, ExampleRecord]] = defaultdict(dict)
    for r in records:
        by[(r.dataset, r.method, r.ratio)][r.example_id] = r
    out = []
    for (dataset, method, ratio), recs in by.items():
        ref = by.get((dataset, reference, ratio))
        if method == reference or not ref:
            continue
        ids = [
            i
            for i in recs
            if i in ref and recs[i].answer_loglik is not None and ref[i].answer_loglik is not None
        ]
        d_ll = paired_delta(
            [float(recs[i].answer_loglik or 0.0) for i in ids],
            [float(ref[i].answer_loglik or 0.0) for i in ids],
        )
        rids = [i for i in ids if recs[i].answer_recall is not None]
        d_rec = paired_delta(
            [float(bool(recs[i].answer_recall)) for i in rids],
            [float(bool(ref[i].answer_recall)) for i in rids],
        )
        out.append((dataset, method, ratio, d_ll, d_rec))
    return out


def _f(x: float, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _pm(v: float, se: float, nd: int = 3) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "–"
    return f"{v:.{nd}f} ± {_f(se, nd)}"


def _diff(e: Estimate) -> str:
    if e.n == 0 or math.isnan(e.value):
        return "–"
    tag = " (tie)" if e.is_tie() else (" **better**" if e.value > 0 else " **worse**")
    return f"{e.value:+.3f} ± {_f(e.se)}{tag}"


def render_markdown(
    rows: Sequence[SummaryRow], records: Sequence[ExampleRecord], methods: Sequence[str] = ()
) -> str:
    """The ``report.md`` text: one quality/cost table per dataset, then head-to-head deltas."""
    order = {m: i for i, m in enumerate(methods)}
    lines = [
        "# Evaluation report",
        "",
        "LL = mean log-prob per token of the gold answer under the reader (teacher forced); "
        "retained = (LL_method − LL_closed) / (LL_full − LL_closed); recall = share of "
        "examples (whose gold answer occurs in the full context) where it still occurs. "
        "± = one standard error (paired where a difference). Differences under 2 SE are ties.",
        "",
    ]
    for dataset in dict.fromkeys(r.dataset for r in rows):
        rs = sorted(
            (r for r in rows if r.dataset == dataset),
            key=lambda r: (
                -r.ratio if r.method not in ("none", "closed-book") else 1,
                order.get(r.method, 99),
            ),
        )
        lines += [
            f"## {dataset}",
            "",
            "| method | target | n | achieved (max dev) | LL | ΔLL vs full | retained | recall (n) "
            "| F1 | score | compress ms/1k tok | TTFT ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rs:
            lines.append(
                f"| {r.method} | {ratio_label(r.ratio)} | {r.n} | {_f(r.achieved_ratio)} "
                f"({_f(r.achieved_ratio_max_dev)}) | {_pm(r.answer_loglik, r.answer_loglik_se)} "
                f"| {_pm(r.loglik_delta, r.loglik_delta_se)} "
                f"| {_pm(r.loglik_retained, r.loglik_retained_se, 2)} "
                f"| {_f(r.answer_recall)} ({r.recall_n}) | {_pm(r.f1, r.f1_se)} | {_f(r.score)} "
                f"| {_f(r.compress_ms_per_1k, 1)} | {_f(r.ttft_ms, 1)} |"
            )
        lines.append("")
    h2h = head_to_head(records)
    if h2h:
        lines += [
            f"## Head to head: method − {REFERENCE_METHOD} (paired, same examples)",
            "",
            "| dataset | method | target | ΔLL | Δrecall |",
            "|---|---|---|---|---|",
        ]
        for dataset, method, ratio, d_ll, d_rec in sorted(
            h2h, key=lambda t: (t[0], -t[2], order.get(t[1], 99))
        ):
            lines.append(
                f"| {dataset} | {method} | {_f(ratio, 2)} | {_diff(d_ll)} | {_diff(d_rec)} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_outputs(
    records: Sequence[ExampleRecord], out: Path, *, methods: Sequence[str] = ()
) -> list[SummaryRow]:
    """Write ``summary.json``, ``report.md`` and the plots; return the summary rows."""
    rows = summarize(records)
    (out / "summary.json").write_text(
        json.dumps([asdict(r) for r in rows], indent=2, allow_nan=True), encoding="utf-8"
    )
    (out / "report.md").write_text(render_markdown(rows, records, methods), encoding="utf-8")
    try:
        from semtoken_lab.eval.plots import write_plots

        write_plots(rows, records, out)
    except ImportError as exc:  # matplotlib is an optional extra
        logger.warning("plots skipped: %s", exc)
    return rows
