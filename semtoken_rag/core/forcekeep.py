"""Force-keep rules: text matched by these patterns is never dropped.

Any unit overlapping a match (IDs, numbers, dates) is kept whatever the budget (the overshoot is
reported). Each pattern is compiled and matched **on its own** (in one alternation, one pattern's
inline flags, group names or backreferences would change another) with the `regex` library, whose
``timeout`` makes a backtracking pattern fail fast with a
:class:`~semtoken_rag.errors.ForceKeepTimeoutError` naming it. The presets run in linear time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import regex

from semtoken_rag.errors import ConfigError, ForceKeepTimeoutError

#: The built-in presets' names, from which the config field, its docs and the CLI choices derive:
#: a new preset is this name plus its pattern below.
ForceKeepPreset = Literal["numbers", "ids", "dates", "urls", "emails"]

#: Named patterns for ``force_keep_presets``; each starts only where a run of its characters
#: starts (a lookbehind), so no text makes it rescan a run.
PRESET_PATTERNS: dict[ForceKeepPreset, str] = {
    "numbers": r"(?<![\w.])[-+]?(?:\d{1,3}(?:[,\u00a0]\d{3})+|\d+)(?:\.\d+)?%?(?![\w])",
    # A 4+ run of letters/digits/_/- holding a digit and a letter, trimmed to alphanumerics.
    "ids": (
        r"(?<![A-Za-z0-9_-])[_-]*+\K(?=[A-Za-z_-]*+[0-9])(?=[0-9_-]*+[A-Za-z])"
        r"[A-Za-z0-9][A-Za-z0-9_-]{3,}(?<=[A-Za-z0-9])"
    ),
    "dates": (
        r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|"
        r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}(?:, \d{4})?)\b"
    ),
    "urls": r"\bhttps?://\S++",
    "emails": r"(?<![\w.+-])[\w.+-]++(?<=\w)@[\w-]++(?:\.[\w-]++)+",
}
if set(PRESET_PATTERNS) != set(get_args(ForceKeepPreset)):  # a name without a pattern, or reverse
    raise AssertionError("ForceKeepPreset and PRESET_PATTERNS must list the same presets")


@dataclass(frozen=True)
class ForceKeepRule:
    """One compiled force-keep pattern and where it came from (for error messages)."""

    name: str
    pattern: regex.Pattern[str]


def _compile(name: str, pattern: str) -> ForceKeepRule:
    try:
        return ForceKeepRule(name, regex.compile(pattern, regex.V0))
    except (regex.error, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ConfigError(f"invalid force_keep regex {name}: {pattern!r}: {exc}") from exc


def compile_rules(
    patterns: Iterable[str], presets: Iterable[ForceKeepPreset]
) -> tuple[ForceKeepRule, ...]:
    """The presets' and the user's patterns, each compiled on its own (empty: no rule).

    Raises:
        ConfigError: naming the pattern (its position and text) and the syntax problem.
    """
    rules = [_compile(f"preset {p!r}", PRESET_PATTERNS[p]) for p in presets]
    rules += [_compile(f"#{i}", p) for i, p in enumerate(patterns)]
    return tuple(rules)


#: Longest timeout handed to ``regex`` (seconds): it treats one above ~9.2e12 s as already
#: expired (64-bit microseconds), so longer ones are clipped here.
MAX_TIMEOUT = 1e9


def match_spans(
    text: str, rules: Sequence[ForceKeepRule], timeout: float | None = 1.0
) -> np.ndarray:
    """``(m, 2) int64`` character spans of the non-empty matches of every rule in ``text``.

    Args:
        text: The chunk text.
        rules: From :func:`compile_rules`.
        timeout: Seconds per rule on ``text`` (``None``: unbounded; clipped to :data:`MAX_TIMEOUT`).

    Raises:
        ForceKeepTimeoutError: a rule exceeded ``timeout`` (it names the rule).
    """
    spans: list[tuple[int, int]] = []
    limit = None if timeout is None else min(timeout, MAX_TIMEOUT)
    for rule in rules:
        try:
            spans.extend(
                m.span() for m in rule.pattern.finditer(text, timeout=limit) if m.end() > m.start()
            )
        except TimeoutError as exc:
            raise ForceKeepTimeoutError(
                f"force_keep pattern {rule.name} ({rule.pattern.pattern!r}) took more than "
                f"{timeout} s on a {len(text)}-character chunk (catastrophic backtracking?); "
                "simplify it or raise force_keep_timeout"
            ) from exc
    return np.asarray(sorted(spans), dtype=np.int64).reshape(-1, 2)


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
    # Words overlapping [s, e): first word whose end > s .. last word whose start < e.
    first = np.searchsorted(word_spans[:, 1], matches[:, 0], side="right")
    last = np.searchsorted(word_spans[:, 0], matches[:, 1], side="left") - 1
    valid = first <= last
    first_unit = np.searchsorted(unit_starts, first[valid], side="right") - 1
    last_unit = np.searchsorted(unit_starts, last[valid], side="right") - 1
    delta = np.zeros(len(unit_starts) + 1, dtype=np.int64)
    np.add.at(delta, first_unit, 1)
    np.add.at(delta, last_unit + 1, -1)
    return np.cumsum(delta[:-1]) > 0
