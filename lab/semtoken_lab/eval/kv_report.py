"""Aggregates of a KV-budget evaluation: ``summary.json`` and ``report.md``.

Every figure is paired over the same examples: the examples (one per ``(dataset, id)``, as ids
repeat across datasets) kept are those where every method has a record (a budget smaller than a
prompt's instruction + question makes that example infeasible for every method, and it is
counted, not hidden).  Retained log-likelihood is ``(LL_m - LL_closed) / (LL_full - LL_closed)``
with a delta-method SE (:func:`semtoken_lab.eval.stats.retained_fraction`); KV bytes and decode
time are ratios to the ``full`` run of the same example, averaged with their SE.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.eval.records import record_example
from semtoken_lab.eval.stats import Estimate, mean_se, paired_delta, retained_fraction

FULL, CLOSED = "full", "closed-book"
_KV = re.compile(r"^kv-(?P<policy>[a-z]+)@(?P<budget>[0-9.]+)$")


@dataclass(frozen=True)
class KVSummaryRow:
    """One (dataset, method) of a KV-budget run; ``*_se`` are standard errors."""

    dataset: str
    method: str
    n: int
    ll: float
    ll_se: float
    retained: float
    retained_se: float
    retained_after_first: float
    retained_after_first_se: float
    kv_ratio: float
    kv_ratio_se: float
    kv_peak_ratio: float
    decode_ms_per_token: float
    decode_ratio: float
    decode_ratio_se: float
    policy_ms_per_token: float
    prompt_tokens: float
    answer_tokens: float


@dataclass(frozen=True)
class Comparison:
    """SemToken's KV policy against a baseline at one budget (paired LL difference)."""

    dataset: str
    budget: float
    baseline: str
    delta: float
    se: float
    n: int


Key = tuple[str | None, str]


def _complete(records: Sequence[dict[str, Any]]) -> tuple[dict[Key, dict[str, dict]], int]:
    """``{(dataset, id): {method: record}}`` for examples with every method; and how many were
    dropped (an infeasible budget, or a run still in progress).

    Why ``(dataset, id)`` (:func:`~semtoken_lab.eval.records.record_example`): ids repeat across
    datasets, and keyed by id alone one dataset's records would complete, or be scored with,
    another's example.  The key is the resume's, so the report keeps the examples it ran.
    """
    groups: dict[Key, dict[str, dict]] = defaultdict(dict)
    methods: set[str] = set()
    bad: set[Key] = set()
    for rec in records:
        methods.add(rec["method"])
        key = record_example(rec)
        if "infeasible" in rec:
            bad.add(key)
        else:
            groups[key][rec["method"]] = rec
    _spread_undated(groups, bad)
    keep = {k: m for k, m in groups.items() if k not in bad and set(m) == methods}
    return keep, len(set(groups) | bad) - len(keep)


def _spread_undated(groups: dict[Key, dict[str, dict]], bad: set[Key]) -> None:
    """Give the records without a dataset (``(None, id)``, written before every record named
    its dataset: old infeasible ones) to every dataset's example with that id, in place.

    Why: the resume (:func:`semtoken_lab.eval.kv_eval._done`) counts them for each such
    example, so the report must too, or an old run's infeasible example would be split in two
    (one half kept, one dropped).  A record naming its dataset wins over one without for the
    same method.  An id no record names a dataset for stays its own example, ``(None, id)``.
    """
    named: dict[str, set[str]] = defaultdict(set)
    for ds, i in set(groups) | bad:
        if ds is not None:
            named[i].add(ds)
    for i, datasets in named.items():
        undated = groups.pop((None, i), {})
        infeasible = (None, i) in bad
        bad.discard((None, i))
        for ds in datasets:
            for method, rec in undated.items():
                groups[(ds, i)].setdefault(method, rec)
            if infeasible:
                bad.add((ds, i))


def _ratio(rows: list[dict[str, dict]], method: str, key: str) -> Estimate:
    return mean_se([r[method][key] / r[FULL][key] for r in rows if r[FULL][key]])


def _per_token(rows: list[dict[str, dict]], method: str, key: str) -> float:
    steps = sum(r[method]["steps"] for r in rows)
    return 1e3 * sum(r[method][key] for r in rows) / steps if steps else math.nan


def summarize(
    records: Sequence[dict[str, Any]],
) -> tuple[list[KVSummaryRow], list[Comparison], int]:
    """Rows per (dataset, method), SemToken-vs-baseline comparisons, and examples dropped."""
    complete, dropped = _complete(records)
    by_ds: dict[str, list[dict[str, dict]]] = defaultdict(list)
    for (ds, _), methods in complete.items():
        by_ds[methods[FULL]["dataset"] if ds is None else ds].append(methods)
    rows: list[KVSummaryRow] = []
    comps: list[Comparison] = []
    for ds, exs in sorted(by_ds.items()):
        closed = {k: np.array([e[CLOSED][k] for e in exs]) for k in ("ll_total", "ll_after_first")}
        full = {k: np.array([e[FULL][k] for e in exs]) for k in ("ll_total", "ll_after_first")}
        for method in sorted(exs[0], key=_method_order):
            ll = np.array([e[method]["ll_total"] for e in exs])
            after = np.array([e[method]["ll_after_first"] for e in exs])
            kept = retained_fraction(ll, closed["ll_total"], full["ll_total"])
            kept_af = retained_fraction(after, closed["ll_after_first"], full["ll_after_first"])
            kv = _ratio(exs, method, "kv_mean_bytes")
            dec = _ratio(exs, method, "decode_s")
            rows.append(
                KVSummaryRow(
                    dataset=ds,
                    method=method,
                    n=len(exs),
                    ll=float(ll.mean()),
                    ll_se=mean_se(ll).se,
                    retained=kept.value,
                    retained_se=kept.se,
                    retained_after_first=kept_af.value,
                    retained_after_first_se=kept_af.se,
                    kv_ratio=kv.value,
                    kv_ratio_se=kv.se,
                    kv_peak_ratio=_ratio(exs, method, "kv_peak_bytes").value,
                    decode_ms_per_token=_per_token(exs, method, "decode_s"),
                    decode_ratio=dec.value,
                    decode_ratio_se=dec.se,
                    policy_ms_per_token=_per_token(exs, method, "policy_s"),
                    prompt_tokens=float(np.mean([e[method]["prompt_tokens"] for e in exs])),
                    answer_tokens=float(np.mean([e[method]["answer_tokens"] for e in exs])),
                )
            )
        comps.extend(_compare(ds, exs))
    return rows, comps, dropped


def _method_order(method: str) -> tuple[int, str]:
    rank = {FULL: 0, CLOSED: 1}
    return (rank.get(method, 3 if method.startswith("prompt@") else 2), method)


def _compare(ds: str, exs: list[dict[str, dict]]) -> list[Comparison]:
    out = []
    budgets: dict[float, list[str]] = defaultdict(list)
    for method in exs[0]:
        m = _KV.match(method)
        if m and m["policy"] != "semtoken":
            budgets[float(m["budget"])].append(method)
    for b, baselines in sorted(budgets.items()):
        ours = f"kv-semtoken@{b:g}"
        if ours not in exs[0]:
            continue
        mine = [e[ours]["ll_total"] for e in exs]
        for base in sorted(baselines):
            d = paired_delta(mine, [e[base]["ll_total"] for e in exs])
            out.append(Comparison(ds, b, base, d.value, d.se, d.n))
    return out


def _fmt(value: float, se: float | None = None, digits: int = 3) -> str:
    if math.isnan(value):
        return "–"
    if se is None or math.isnan(se):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {se:.{digits}f}"


def render_markdown(
    rows: Sequence[KVSummaryRow], comps: Sequence[Comparison], dropped: int, cfg: Any = None
) -> str:
    """The report: one table per dataset, then the head-to-head comparisons."""
    lines = ["# KV budget during decoding", ""]
    if cfg is not None:
        lines += [f"Config: `{json.dumps(asdict(cfg), sort_keys=True)}`", ""]
    lines += [
        f"Examples dropped (a method infeasible or missing): {dropped}.",
        "",
        "LL retained: (LL − closed-book) / (full − closed-book), ± SE (paired, delta method); "
        "'after 1st' leaves out the first answer token, which every method reads from the "
        "full prefill.  KV and decode: ratio to `full` on the same example (mean ± SE); "
        "decode and policy ms are per decoding step.",
        "",
    ]
    head = (
        "| method | n | prompt tok | LL | retained | retained after 1st | KV mean/full | "
        "KV peak/full | decode ms/tok | decode/full | policy ms/tok |"
    )
    for ds in sorted({r.dataset for r in rows}):
        lines += [f"## {ds}", "", head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in (r for r in rows if r.dataset == ds):
            lines.append(
                f"| {r.method} | {r.n} | {r.prompt_tokens:.0f} | {_fmt(r.ll, r.ll_se, 2)} | "
                f"{_fmt(r.retained, r.retained_se)} | "
                f"{_fmt(r.retained_after_first, r.retained_after_first_se)} | "
                f"{_fmt(r.kv_ratio, r.kv_ratio_se)} | {_fmt(r.kv_peak_ratio)} | "
                f"{_fmt(r.decode_ms_per_token, digits=1)} | "
                f"{_fmt(r.decode_ratio, r.decode_ratio_se)} | "
                f"{_fmt(r.policy_ms_per_token, digits=2)} |"
            )
        lines.append("")
        mine = [c for c in comps if c.dataset == ds]
        if mine:
            lines += [
                "SemToken KV policy − baseline, paired answer LL (nats; ≥ −1 SE = within 1 SE):",
                "",
                "| budget | baseline | Δ LL | SE | n | within 1 SE or better |",
                "|---:|---|---:|---:|---:|---|",
            ]
            for c in mine:
                ok = "yes" if c.delta >= -c.se else "no"
                lines.append(
                    f"| {c.budget:g} | {c.baseline} | {c.delta:+.3f} | {c.se:.3f} | {c.n} | {ok} |"
                )
            lines.append("")
    return "\n".join(lines)


def write_report(out: str | Path, records: Sequence[dict[str, Any]], cfg: Any = None) -> None:
    """Write ``summary.json`` and ``report.md`` into ``out``."""
    rows, comps, dropped = summarize(records)
    folder = Path(out)
    payload = {
        "rows": [asdict(r) for r in rows],
        "comparisons": [asdict(c) for c in comps],
        "dropped": dropped,
        "config": asdict(cfg) if cfg is not None else None,
    }
    (folder / "summary.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(rows, comps, dropped, cfg), encoding="utf-8")
