"""Token counting in a named tokenizer, per word, so budgets are in the reader's tokens.

Each token (fast tokenizer, offsets) is charged to the word holding its last character.  Counts
never collapse: a multi-character unknown token (WordPiece on a run it cannot split) is charged
what its text costs cut into short pieces, spread over its words, and a word no token covers
(normalised away) costs one, since the reader reads them all.  ``count`` sums the word costs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from semtoken_rag.cache import LRUMemo, text_and_arrays_bytes
from semtoken_rag.core.segment import find_words

logger = logging.getLogger(__name__)


class TokenCounter:
    """Counts tokens of a Hugging Face tokenizer, per word.

    Args:
        tokenizer: A transformers tokenizer (a slow one counts word by word).
        name: Name shown in reports.
        cache_bytes: Bytes of texts (and their costs) whose per-word costs are memoised.
    """

    def __init__(
        self, tokenizer: Any, name: str | None = None, cache_bytes: int = 32 << 20
    ) -> None:
        self.tokenizer = tokenizer
        self.name: str = str(name or getattr(tokenizer, "name_or_path", type(tokenizer).__name__))
        self._fast = bool(getattr(tokenizer, "is_fast", False))
        self._cache: LRUMemo[str, np.ndarray] = LRUMemo(cache_bytes, text_and_arrays_bytes)

    def count(self, text: str) -> int:
        """Tokens of ``text`` (no special tokens; see the module docstring for unknown runs)."""
        if not text:
            return 0
        if not self._fast:
            return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        return int(self._fast_costs(text, find_words(text)).sum())

    def _fast_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray:
        n = len(word_spans)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        offs, weights = self._token_weights(text)
        real = offs[:, 1] > offs[:, 0]
        offs, weights = offs[real], weights[real]
        heavy = weights > 1
        widx = np.searchsorted(word_spans[:, 0], offs[~heavy, 1] - 1, side="right") - 1
        costs = np.bincount(widx.clip(0, n - 1), minlength=n).astype(np.int64)
        for (a, b), w in zip(offs[heavy].tolist(), weights[heavy].tolist(), strict=True):
            _spread(costs, word_spans, a, b, w)
        # A word no token overlaps was dropped by the normaliser; the reader still reads it.
        nxt = np.searchsorted(offs[:, 1], word_spans[:, 0], side="right")
        covered = nxt < len(offs)
        covered[covered] = offs[nxt[covered], 0] < word_spans[covered, 1]
        costs[~covered] = np.maximum(costs[~covered], 1)
        return costs

    def _token_weights(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(offsets (T, 2) int64, cost (T,) int64)``: 1 per token, more for an unknown run."""
        enc = self.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        offs = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        weights = np.ones(len(ids), dtype=np.int64)
        unk = getattr(self.tokenizer, "unk_token_id", None)
        if unk is not None and len(ids):
            for i in np.flatnonzero((ids == unk) & (offs[:, 1] - offs[:, 0] > 1)).tolist():
                weights[i] = self._unknown_run_cost(text[offs[i, 0] : offs[i, 1]], unk)
        return offs, weights

    def _unknown_run_cost(self, run: str, unk: int) -> int:
        pieces = [run[i : i + _PIECE_CHARS] for i in range(0, len(run), _PIECE_CHARS)]
        encoded = self.tokenizer(pieces, add_special_tokens=False, verbose=False)["input_ids"]
        total = 0
        for piece, ids in zip(pieces, encoded, strict=True):
            total += max(len(ids), len(piece.strip())) if unk in ids else len(ids)
        return max(1, total)

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray:
        """Tokens charged to each word.

        Args:
            text: The text.
            word_spans: ``(n_words, 2) int64`` word character spans.

        Returns:
            ``(n_words,) int64``, read-only (memoised); sums to :meth:`count` (fast tokenizers).
        """
        n = len(word_spans)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        hit = self._cache.get(text)
        if hit is not None and len(hit) == n:
            return hit
        if self._fast:
            costs = self._fast_costs(text, word_spans)
        else:
            costs = np.asarray(
                [self.count(text[s:e]) for s, e in word_spans.tolist()], dtype=np.int64
            )
        costs.flags.writeable = False  # memoised and handed out: a caller's write stuck
        self._cache.put(text, costs)
        return costs


#: Characters per re-counted piece of an unknown run (well under WordPiece's 100-char word limit).
_PIECE_CHARS = 16


def _spread(costs: np.ndarray, word_spans: np.ndarray, a: int, b: int, total: int) -> None:
    """Add ``total`` tokens to the words overlapping ``[a, b)``, in proportion to the characters
    of each inside it (the remainder to the last), so no single word carries a whole run."""
    first = int(np.searchsorted(word_spans[:, 1], a, side="right"))
    last = int(np.searchsorted(word_spans[:, 0], b, side="left")) - 1
    if last < first:
        costs[min(max(first, 0), len(costs) - 1)] += total
        return
    seg = word_spans[first : last + 1]
    chars = np.minimum(seg[:, 1], b) - np.maximum(seg[:, 0], a)
    share = np.floor(total * chars / max(int(chars.sum()), 1)).astype(np.int64)
    share[-1] += total - int(share.sum())
    costs[first : last + 1] += share


def load_counter(name: str) -> TokenCounter:
    """A :class:`TokenCounter` for a tokenizer id or path (the packaged reader's aliases and
    ``.gguf`` paths: the GGUF metadata's tokenizer, via :mod:`semtoken_rag.readers`).

    Raises:
        ModelNotFoundError: the tokenizer cannot be loaded or has no vocabulary.
    """
    from semtoken_rag import models, readers

    if name in models.READER_ALIASES or readers.reader_gguf(name) is not None:
        canonical = models.READER_CANONICAL_ID if name in models.READER_ALIASES else name
        return TokenCounter(readers.load_reader_tokenizer(name), name=canonical)
    from transformers import AutoTokenizer

    path, canonical = models.resolve_encoder(name)
    try:
        tok = AutoTokenizer.from_pretrained(path, **models.local_only(path))
    except (OSError, ValueError) as exc:
        raise models.missing_model_error(name, exc) from exc
    return TokenCounter(models.check_vocabulary(tok, name), name=canonical)
