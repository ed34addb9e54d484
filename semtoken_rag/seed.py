"""The seed-compatible facade: ``SemToken(config).tokenize(text, query=...)``.

The original SemToken README's Quick Start runs unchanged (``tokenize`` returns its dict,
``batch_process`` maps it over texts); everything is delegated to :class:`Compressor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from semtoken_rag.compressor import Compressor
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.errors import ConfigError, InvalidInputError
from semtoken_rag.results import CompressionResult


class SemToken:
    """Seed-compatible entry point.

    Args:
        config: A :class:`SemTokenConfig` (defaults to ``SemTokenConfig()``).
        tokenizer: Any Hugging Face tokenizer to count (and budget) in; ``None``: the encoder's.
    """

    def __init__(self, config: SemTokenConfig | None = None, tokenizer: Any = None) -> None:
        counter = None
        if tokenizer is not None:
            from semtoken_rag.tokens import TokenCounter

            counter = TokenCounter(tokenizer)
            try:  # one probe: any other callable (str.split, tiktoken's encode) fails here, typed
                ok = callable(tokenizer) and counter.count("A probe.") > 0
            except Exception:
                ok = False
            if not ok:
                raise ConfigError(
                    f"tokenizer must be a Hugging Face tokenizer, got {type(tokenizer).__name__}"
                )
        if config is not None and not isinstance(config, SemTokenConfig):
            raise ConfigError(f"config must be a SemTokenConfig, got {type(config).__name__}")
        self.config = config or SemTokenConfig()
        self.compressor = Compressor(self.config, counter=counter)

    @staticmethod
    def _as_dict(result: CompressionResult) -> dict[str, Any]:
        chunk = result.chunks[0]
        ratio = result.ratio
        return {
            "compressed_text": chunk.text,
            "compression_stats": {
                "original_count": result.original_tokens,
                "compressed_count": result.kept_tokens,
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
            ``{"compressed_text", "compression_stats", "offsets", "result"}`` (a typed result).

        Raises:
            InvalidInputError: ``text`` is not a string (several texts: :meth:`batch_process`).
        """
        if not isinstance(text, str):
            raise InvalidInputError(
                f"tokenize() takes one text (str), got {type(text).__name__}; use "
                "batch_process() for several texts"
            )
        return self._as_dict(self.compressor.compress(text, query))

    def batch_process(self, texts: Sequence[str], query: str | None = None) -> list[dict[str, Any]]:
        """:meth:`tokenize` for each text (one batched encoder pass for all of them).

        Raises:
            InvalidInputError: ``texts`` is not a sequence of strings (a lone ``str`` is refused).
        """
        if isinstance(texts, str) or texts is None or not isinstance(texts, Sequence):
            raise InvalidInputError(
                "batch_process() takes a list of texts, got "
                f"{type(texts).__name__}; use tokenize() for one text"
            )
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InvalidInputError(f"text {i} is {type(t).__name__}, expected str")
        results = self.compressor.compress_many([(t, query) for t in texts])
        return [self._as_dict(r) for r in results]
