"""Force-keep rules: text matched by these patterns is never dropped.

LLMLingua users lose IDs, numbers and dates to token-level pruning; here any unit that overlaps a
match is kept whatever the budget (the overshoot is reported).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

#: Named patterns for ``SemTokenConfig.force_keep_presets``.
PRESET_PATTERNS: dict[str, str] = {
    "numbers": r"(?<![\w.])[-+]?(?:\d{1,3}(?:[,\u00a0]\d{3})+|\d+)(?:\.\d+)?%?(?![\w])",
    "ids": r"\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_-]{3,}\b",
    "dates": (
        r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|"
        r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}(?:, \d{4})?)\b"
    ),
    "urls": r"\bhttps?://\S+",
    "emails": r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b",
}


def compile_rules(patterns: Iterable[str], presets: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation of the user patterns and the named presets (``None`` if there are none)."""
    parts = [PRESET_PATTERNS[p] for p in presets] + list(patterns)
    if not parts:
        return None
    return re.compile("|".join(f"(?:{p})" for p in parts))


def match_spans(text: str, rule: re.Pattern[str] | None) -> np.ndarray:
    """``(m, 2) int64`` character spans of non-empty matches of ``rule`` in ``text``."""
    if rule is None:
        return np.zeros((0, 2), dtype=np.int64)
    spans = [m.span() for m in rule.finditer(text) if m.end() > m.start()]
    return np.asarray(spans, dtype=np.int64).reshape(-1, 2)


def forced_units(
    matches: np.ndarray, word_spans: np.ndarray, unit_starts: np.ndarray
) -> np.ndarray:
    """Units that overlap any match.

    Args:
        matches: ``(m, 2) int64`` character spans.
        word_spans: ``(n_words, 2) int64`` word character spans.
        unit_starts: ``(n_units,) int64`` first word of each unit.

    Returns:
        ``(n_units,) bool``.
    """
    forced = np.zeros(len(unit_starts), dtype=bool)
    if len(matches) == 0 or len(word_spans) == 0:
        return forced
    # Words overlapping [s, e): first word whose end > s .. last word whose start < e.
    first = np.searchsorted(word_spans[:, 1], matches[:, 0], side="right")
    last = np.searchsorted(word_spans[:, 0], matches[:, 1], side="left") - 1
    valid = first <= last
    if not valid.any():
        return forced
    first_unit = np.searchsorted(unit_starts, first[valid], side="right") - 1
    last_unit = np.searchsorted(unit_starts, last[valid], side="right") - 1
    delta = np.zeros(len(unit_starts) + 1, dtype=np.int64)
    np.add.at(delta, first_unit, 1)
    np.add.at(delta, last_unit + 1, -1)
    return np.cumsum(delta[:-1]) > 0
