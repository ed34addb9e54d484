"""The seed-compatible facade: ``SemToken(config).tokenize(text, query=...)``.

The original SemToken README's Quick Start runs unchanged with ``from semtoken_rag import ...``:
``tokenize`` returns a dict with ``compressed_text``, ``compression_stats`` (``original_count``,
``compressed_count``, ``compression_ratio``, ``theoretical_speedup``) and the kept ``offsets``;
``batch_process`` maps it over texts.  Everything is delegated to :class:`Compressor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from semtoken_rag.compressor import Compressor
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.results import CompressionResult


class SemToken:
    """Seed-compatible entry point.

    Args:
        config: A :class:`SemTokenConfig` (defaults to ``SemTokenConfig()``).
        tokenizer: Any Hugging Face tokenizer; token counts (and the budget) are then in its
            tokens.  ``None`` counts in the encoder's tokenizer.
    """

    def __init__(self, config: SemTokenConfig | None = None, tokenizer: Any = None) -> None:
        counter = None
        if tokenizer is not None:
            from semtoken_rag.tokens import TokenCounter

            counter = TokenCounter(tokenizer)
        self.config = config or SemTokenConfig()
        self.compressor = Compressor(self.config, counter=counter)

    @staticmethod
    def _as_dict(result: CompressionResult) -> dict[str, Any]:
        chunk = result.chunks[0]
        original = result.original_tokens
        kept = result.kept_tokens
        ratio = kept / original if original else 1.0
        return {
            "compressed_text": chunk.text,
            "compression_stats": {
                "original_count": original,
                "compressed_count": kept,
                "compression_ratio": ratio,
                # Attention and KV cost are linear in length for a fixed query (paper, 3.6).
                "theoretical_speedup": (1.0 / ratio) if ratio > 0 else float("inf"),
                "forced_count": result.forced_tokens,
                "overshoot_count": result.overshoot_tokens,
            },
            "offsets": [list(o) for o in chunk.offsets],
            "result": result,
        }

    def tokenize(self, text: str, query: str | None = None) -> dict[str, Any]:
        """Compress one text.

        Returns:
            ``{"compressed_text", "compression_stats", "offsets", "result"}`` where ``result``
            is the typed :class:`~semtoken_rag.results.CompressionResult`.
        """
        return self._as_dict(self.compressor.compress(text, query))

    def batch_process(self, texts: Sequence[str], query: str | None = None) -> list[dict[str, Any]]:
        """:meth:`tokenize` for each text (one batched encoder pass for all of them)."""
        results = self.compressor.compress_many([(t, query) for t in texts])
        return [self._as_dict(r) for r in results]
