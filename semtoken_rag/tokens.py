"""Token counting in a named tokenizer, per word, so budgets are in the reader's tokens.

The budget is spent on units (sentences) but counted in the tokens the *reader* will see.  One
call of a fast tokenizer with offsets gives every token's character span; each token is charged
to the word holding its last character, so per-word costs sum exactly to the text's token count.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class TokenCounter:
    """Counts tokens of a Hugging Face tokenizer, per word.

    Args:
        tokenizer: A transformers tokenizer (fast tokenizers are used with offsets; slow ones
            fall back to tokenising word by word).
        name: Name shown in reports.
        cache_size: Texts whose per-word costs are memoised (chunks are retrieved repeatedly).
    """

    def __init__(self, tokenizer: Any, name: str | None = None, cache_size: int = 4096) -> None:
        self.tokenizer = tokenizer
        self.name: str = str(name or getattr(tokenizer, "name_or_path", type(tokenizer).__name__))
        self._fast = bool(getattr(tokenizer, "is_fast", False))
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        """Tokens of ``text`` (no special tokens)."""
        if not text:
            return 0
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray:
        """Tokens charged to each word.

        Args:
            text: The text.
            word_spans: ``(n_words, 2) int64`` word character spans.

        Returns:
            ``(n_words,) int64``; sums to :meth:`count` of ``text`` (fast tokenizers).
        """
        n = len(word_spans)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None and len(hit) == n:
                self._cache.move_to_end(text)
                return hit
        if self._fast:
            enc = self.tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )
            offs = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
            offs = offs[offs[:, 1] > offs[:, 0]]
            widx = np.searchsorted(word_spans[:, 0], offs[:, 1] - 1, side="right") - 1
            costs = np.bincount(widx.clip(0, n - 1), minlength=n).astype(np.int64)
        else:
            costs = np.asarray(
                [self.count(text[s:e]) for s, e in word_spans.tolist()], dtype=np.int64
            )
        with self._lock:
            self._cache[text] = costs
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return costs


def load_counter(name: str) -> TokenCounter:
    """A :class:`TokenCounter` for a tokenizer id or path.

    The packaged reader's aliases (``smollm2``, ``HuggingFaceTB/SmolLM2-135M-Instruct``) resolve
    to its tokenizer through the reader package; the packaged encoder's aliases to the encoder's.
    """
    from semtoken_rag import models

    if name in models.READER_ALIASES:
        from semtoken_rag.readers import load_reader_tokenizer

        return TokenCounter(load_reader_tokenizer(name), name=models.READER_CANONICAL_ID)
    from transformers import AutoTokenizer

    path, canonical = models.resolve_encoder(name)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise models.missing_model_error(name, exc) from exc
    return TokenCounter(tok, name=canonical)
