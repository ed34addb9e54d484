"""Benchmark results as JSON, a markdown report and a PNG plot (matplotlib, Agg backend).

Targets are *measured*, never asserted (:mod:`semtoken_lab.bench.targets`); the markdown is
:mod:`semtoken_lab.bench.report_markdown`.  This module writes the three files.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semtoken_lab.bench.compression_rows import CompressionReport
from semtoken_lab.bench.endtoend import EndToEndRow
from semtoken_lab.bench.report_markdown import to_markdown
from semtoken_lab.bench.result import BenchResult
from semtoken_lab.bench.targets import targets

if TYPE_CHECKING:
    from matplotlib.axes import Axes

JSON_NAME = "bench.json"
MD_NAME = "bench.md"
PNG_NAME = "bench.png"


def _with_props(obj: Any) -> dict[str, Any]:
    """``asdict`` plus the derived properties / summary, so the JSON is self-explanatory."""
    d = dataclasses.asdict(obj)
    if hasattr(obj, "summary"):
        d.update(obj.summary())
    for name in dir(type(obj)):
        if isinstance(getattr(type(obj), name, None), property):
            d[name] = getattr(obj, name)
    return d


def to_json(res: BenchResult) -> dict[str, Any]:
    """``bench.json``: every section with its derived figures, and the targets."""
    comp = res.compression
    return {
        "command": res.command,
        "machine": res.machine,
        "device": res.device,
        "encoder": [_with_props(r) for r in res.encoder],
        "settings": res.settings,
        "compression": None
        if comp is None
        else {
            "rows": [_with_props(r) for r in comp.rows],
            "exponents": comp.exponents,
            "baselines": [_with_props(b) for b in comp.baselines],
        },
        "store": None if res.store is None else dataclasses.asdict(res.store),
        "endtoend": {"reader": res.reader, "rows": [_with_props(r) for r in res.endtoend]},
        "targets": [dataclasses.asdict(t) for t in targets(res)],
    }


def plot(res: BenchResult, path: Path) -> None:
    """Log-log cost per call against tokens; end-to-end TTFT when measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_panels = 2 if res.endtoend else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(6.5 * n_panels, 4.5), squeeze=False)
    _plot_compression(axes[0][0], res.compression)
    if res.endtoend:
        _plot_endtoend(axes[0][1], res.endtoend)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_compression(ax: Axes, comp: CompressionReport | None) -> None:
    """Our paths and each baseline, ms per call against tokens (log-log when measured)."""
    if comp and comp.rows:
        ns = [r.tokens for r in comp.rows]
        for attr, label in (
            ("core_ms", "core"),
            ("warm_repeat_query_ms", "warm, same query"),
            ("warm_fresh_query_ms", "warm, fresh query"),
            ("cold_ms", "cold"),
            ("raw_forward_ms", "raw encoder forward"),
        ):
            ax.plot(ns, [getattr(r, attr) for r in comp.rows], marker="o", label=label)
        for name in dict.fromkeys(b.method for b in comp.baselines):
            bs = [b for b in comp.baselines if b.method == name]
            ax.plot([b.tokens for b in bs], [b.ms for b in bs], marker="s", ls="--", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("context tokens")
    ax.set_ylabel("ms per compression")
    ax.set_title("Compression cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _plot_endtoend(ax: Axes, rows: list[EndToEndRow]) -> None:
    """Full-context TTFT against compression plus compressed TTFT, cold and warm, per ratio."""
    sizes = sorted({r.context_tokens for r in rows})
    full = {r.context_tokens: r.full_ttft_ms for r in rows}
    ax.plot(sizes, [full[s] for s in sizes], marker="o", label="full context")
    for ratio in sorted({r.ratio for r in rows}, reverse=True):
        rs = sorted((r for r in rows if r.ratio == ratio), key=lambda r: r.context_tokens)
        ax.plot(
            [r.context_tokens for r in rs],
            [r.compress_cold_ms + r.compressed_ttft_ms for r in rs],
            marker="o",
            label=f"ratio {ratio}, cold",
        )
        ax.plot(
            [r.context_tokens for r in rs],
            [r.compress_warm_ms + r.compressed_ttft_ms for r in rs],
            marker="s",
            ls="--",
            label=f"ratio {ratio}, warm",
        )
    ax.set_xlabel("context tokens (reader)")
    ax.set_ylabel("TTFT ms (compression included)")
    ax.set_title("End to end")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def write_all(res: BenchResult, out_dir: Path) -> dict[str, Path]:
    """Write ``bench.json``, ``bench.md`` and ``bench.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / JSON_NAME, "markdown": out_dir / MD_NAME, "png": out_dir / PNG_NAME}
    paths["json"].write_text(json.dumps(to_json(res), indent=2), encoding="utf-8")
    paths["markdown"].write_text(to_markdown(res), encoding="utf-8")
    plot(res, paths["png"])
    return paths
