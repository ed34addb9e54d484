"""PNG plots of a run (matplotlib, Agg backend: no display needed).

* ``quality_vs_ratio.png``: retained log-likelihood (± SE) against the achieved ratio, a line per
  method, a panel per dataset.
* ``time_breakdown.png``: per method, mean compression vs prefill vs decode wall time.
* ``density_heatmap.png``: for one example, per sentence: semantic entropy (trace of the
  covariance of its word fingerprints), query relevance, and which methods kept it.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semtoken_lab.eval.records import ExampleRecord, ratio_label

logger = logging.getLogger(__name__)


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(rows: Sequence, records: Sequence[ExampleRecord], out: Path) -> list[Path]:
    """Quality-vs-ratio and time-breakdown plots; returns the files written."""
    paths = [quality_vs_ratio(rows, out / "quality_vs_ratio.png")]
    if any(r.prediction is not None for r in records):
        paths.append(time_breakdown(records, out / "time_breakdown.png"))
    return paths


def quality_vs_ratio(rows: Sequence, path: Path) -> Path:
    """Retained LL against achieved ratio, one line per method, one panel per dataset."""
    plt = _plt()
    datasets = list(dict.fromkeys(r.dataset for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=False):
        by: dict[str, list] = defaultdict(list)
        for r in rows:
            if r.dataset == ds and not math.isnan(r.loglik_retained):
                by[r.method].append(r)
        for method, rs in by.items():
            rs.sort(key=lambda r: r.achieved_ratio)
            x = [r.achieved_ratio for r in rs]
            y = [r.loglik_retained for r in rs]
            e = [0 if math.isnan(r.loglik_retained_se) else r.loglik_retained_se for r in rs]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=method)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_title(ds)
        ax.set_xlabel("achieved ratio (reader tokens kept)")
        ax.set_ylabel("LL retained (0 closed-book, 1 full)")
    labelled = [ax for ax in axes[0] if ax.get_legend_handles_labels()[0]]
    if labelled:  # the last panel with a measured line (none: no legend, not a warning)
        labelled[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def time_breakdown(records: Sequence[ExampleRecord], path: Path) -> Path:
    """Stacked bars per (method, ratio): compression, prefill and decode time (ms)."""
    plt = _plt()
    by: dict[str, list[ExampleRecord]] = defaultdict(list)
    for r in records:
        if r.prediction is not None:
            by[f"{r.method}@{ratio_label(r.ratio)}"].append(r)
    labels = list(by)
    comp = np.array([np.mean([r.compress_ms for r in by[k]]) for k in labels])
    pre = np.array([np.mean([r.prefill_ms for r in by[k]]) for k in labels])
    dec = np.array(
        [np.mean([r.decode_ms_per_token * max(r.new_tokens - 1, 0) for r in by[k]]) for k in labels]
    )
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(labels)), 4))
    x = np.arange(len(labels))
    ax.bar(x, comp, label="compress")
    ax.bar(x, pre, bottom=comp, label="prefill")
    ax.bar(x, dec, bottom=comp + pre, label="decode")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("ms per example (mean)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def density_heatmap(
    rows: dict[str, np.ndarray], path: Path, title: str = "semantic density per sentence"
) -> Path:
    """Heatmap of per-sentence series (each row min-max scaled to [0, 1]).

    Args:
        rows: Row label -> ``(n_sentences,) float`` values (entropy, relevance, kept fractions).
        path: PNG to write.
    """
    plt = _plt()
    labels = list(rows)
    mat = np.stack([np.asarray(rows[k], dtype=np.float64) for k in labels])
    lo, hi = mat.min(axis=1, keepdims=True), mat.max(axis=1, keepdims=True)
    scaled = (mat - lo) / np.where(hi > lo, hi - lo, 1.0)
    fig, ax = plt.subplots(figsize=(min(16, 2 + 0.12 * mat.shape[1]), 0.5 * len(labels) + 1.2))
    ax.imshow(scaled, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("sentence")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
