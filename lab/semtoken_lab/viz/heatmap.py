"""Semantic-density heatmap of a text (in the spirit of the paper's Figure 1).

Every word is drawn in reading order on a background coloured by the semantic entropy of its
span (red = dense, blue = repetitive), and dropped words are greyed out, so one picture shows
where the text is information-rich and what the compressor kept.  A strip underneath plots the
density per unit against the coarse/fine threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from semtoken_rag.core.segment import find_words
from semtoken_rag.results import Explanation


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
    ent = explanation.unit_density[sel].astype(float)
    kept = explanation.unit_kept[sel]
    ref = float(np.median(ent)) if len(ent) else 1.0
    density = ent / ref if ref > 0 else ent
    lo, hi = (float(density.min()), float(density.max())) if len(density) else (0.0, 1.0)
    norm = (density - lo) / (hi - lo) if hi > lo else np.full_like(density, 0.5)
    cmap = colormaps["coolwarm"]

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

    n_lines = len(lines)
    fig_h = 1.6 + 0.22 * n_lines
    fontsize = 8
    fig_w = max(8.0, chars_per_line * 0.6 * fontsize / 72 / 0.96 + 0.3)
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.02, 1.4 / fig_h, 0.96, 1 - 1.75 / fig_h))
    ax.set_xlim(0, chars_per_line)
    ax.set_ylim(n_lines, 0)
    ax.axis("off")
    for li, line in enumerate(lines):
        x = 0.0
        for w, u in line:
            colour = cmap(float(norm[u])) if 0 <= u < len(norm) else (1, 1, 1, 1)
            alpha = 0.9 if (0 <= u < len(kept) and kept[u]) else 0.25
            ax.text(
                x,
                li + 0.5,
                w,
                fontsize=fontsize,
                family="monospace",
                va="center",
                color="black" if alpha > 0.5 else "#777777",
                bbox={"facecolor": colour, "alpha": alpha, "edgecolor": "none", "pad": 0.5},
            )
            x += len(w) + 1
    ax.set_title(f"{title}: red = dense, blue = repetitive, faded = dropped", fontsize=9)

    strip = fig.add_axes((0.06, 0.35 / fig_h, 0.9, 0.85 / fig_h))
    pos = np.arange(len(density))
    strip.bar(pos, density, color=[cmap(float(v)) for v in norm], width=1.0)
    strip.axhline(entropy_threshold, color="black", linestyle="--", linewidth=1)
    strip.set_xlim(-0.5, max(len(density), 1) - 0.5)
    strip.set_ylabel("H / median", fontsize=7)
    strip.set_xlabel("unit (sentence) position", fontsize=8)
    strip.tick_params(labelsize=7)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
