"""Semantic-density heatmap of a text (in the spirit of the paper's Figure 1).

Every word is drawn in reading order on a background coloured by the semantic entropy of its
span (red = dense, blue = repetitive), and dropped words are greyed out, so one picture shows
where the text is information-rich and what the compressor kept.  A strip underneath plots the
density per unit against the coarse/fine threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from semtoken_rag.core.segment import find_words
from semtoken_rag.results import Explanation

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

_FONTSIZE = 8


def density_heatmap(
    text: str,
    explanation: Explanation,
    path: str | Path,
    *,
    entropy_threshold: float = 0.5,
    title: str = "Semantic density",
    max_words: int = 700,
    chars_per_line: int = 120,
) -> Path:
    """Write a PNG heatmap of ``text`` (chunk 0 of ``explanation``) to ``path``.

    Args:
        text: The (first) chunk that was compressed.
        explanation: From :meth:`Compressor.explain`.
        path: Output PNG path.
        entropy_threshold: delta of the config, drawn as the coarse/fine boundary.
        title: Figure title.
        max_words: Words drawn at most (the rest is summarised in the strip).
        chars_per_line: Wrap width of the drawn text.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps

    sel = explanation.unit_chunk == 0
    spans = explanation.unit_char_spans[sel]
    density, norm = _relative_density(explanation.unit_density[sel].astype(float))
    cmap = colormaps["coolwarm"]
    lines = _wrapped_words(text, spans, max_words, chars_per_line)

    fig_h = 1.6 + 0.22 * len(lines)
    fig_w = max(8.0, chars_per_line * 0.6 * _FONTSIZE / 72 / 0.96 + 0.3)
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.02, 1.4 / fig_h, 0.96, 1 - 1.75 / fig_h))
    ax.set_xlim(0, chars_per_line)
    ax.set_ylim(len(lines), 0)
    ax.axis("off")
    _draw_words(ax, lines, norm, explanation.unit_kept[sel], cmap)
    ax.set_title(f"{title}: red = dense, blue = repetitive, faded = dropped", fontsize=9)
    _draw_strip(fig, fig_h, density, norm, cmap, entropy_threshold)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _relative_density(ent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's entropy over the median (the strip's scale), and that scaled to [0, 1] for
    the colour map (0.5 everywhere when all units are alike)."""
    ref = float(np.median(ent)) if len(ent) else 1.0
    density = ent / ref if ref > 0 else ent
    lo, hi = (float(density.min()), float(density.max())) if len(density) else (0.0, 1.0)
    norm = (density - lo) / (hi - lo) if hi > lo else np.full_like(density, 0.5)
    return density, norm


def _wrapped_words(
    text: str, spans: np.ndarray, max_words: int, chars_per_line: int
) -> list[list[tuple[str, int]]]:
    """The first ``max_words`` words wrapped at ``chars_per_line``, each with the index of its
    unit (-1 when the chunk has no unit)."""
    words = find_words(text)[:max_words]
    unit_of_word: np.ndarray = (
        np.searchsorted(spans[:, 0], words[:, 0], side="right") - 1
        if len(spans)
        else np.full(len(words), -1)
    )
    lines: list[list[tuple[str, int]]] = [[]]
    width = 0
    for (s, e), u in zip(words.tolist(), unit_of_word.tolist()):
        w = text[s:e]
        if width + len(w) + 1 > chars_per_line and lines[-1]:
            lines.append([])
            width = 0
        lines[-1].append((w, int(u)))
        width += len(w) + 1
    return lines


def _draw_words(
    ax: Axes,
    lines: list[list[tuple[str, int]]],
    norm: np.ndarray,
    kept: np.ndarray,
    cmap: Colormap,
) -> None:
    """Each word on its unit's colour; the words of dropped units faded."""
    for li, line in enumerate(lines):
        x = 0.0
        for w, u in line:
            colour = cmap(float(norm[u])) if 0 <= u < len(norm) else (1, 1, 1, 1)
            alpha = 0.9 if (0 <= u < len(kept) and kept[u]) else 0.25
            ax.text(
                x,
                li + 0.5,
                w,
                fontsize=_FONTSIZE,
                family="monospace",
                va="center",
                color="black" if alpha > 0.5 else "#777777",
                bbox={"facecolor": colour, "alpha": alpha, "edgecolor": "none", "pad": 0.5},
            )
            x += len(w) + 1


def _draw_strip(
    fig: Figure,
    fig_h: float,
    density: np.ndarray,
    norm: np.ndarray,
    cmap: Colormap,
    entropy_threshold: float,
) -> None:
    """The density of every unit as bars, against the coarse/fine threshold."""
    strip = fig.add_axes((0.06, 0.35 / fig_h, 0.9, 0.85 / fig_h))
    pos = np.arange(len(density))
    strip.bar(pos, density, color=[cmap(float(v)) for v in norm], width=1.0)
    strip.axhline(entropy_threshold, color="black", linestyle="--", linewidth=1)
    strip.set_xlim(-0.5, max(len(density), 1) - 0.5)
    strip.set_ylabel("H / median", fontsize=7)
    strip.set_xlabel("unit (sentence) position", fontsize=8)
    strip.tick_params(labelsize=7)
