"""What a compression method of the harness is (:class:`Method`) and the shared resources every
method is built from (:class:`MethodEnv`).

Every method is a callable ``(chunks, question, budget) -> str``: the chunks of one context
(one chunk in ``context`` mode, the retrieved chunks in ``rag`` mode), the question, and the
budget in **reader tokens**; it returns the compressed context.  All budgets are counted with
the reader's tokenizer so every method is held to the same achieved ratio (the runner records
it per example and the smoke test checks it is within 0.03 of the target).

:class:`MethodEnv` builds heavy resources (MiniLM, the reader LM, LongLLMLingua's model folder,
the SemToken encoder) lazily and once, so a run that skips a method never loads its model; the
runner sets :attr:`MethodEnv.documents` (the run's documents) before it builds any method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from semtoken_lab.eval.selection import UnitSelector


class Method(Protocol):
    """A compression method (see module docstring)."""

    def __call__(self, chunks: Sequence[str], question: str, budget: int) -> str: ...


@dataclass
class MethodEnv:
    """Shared, lazily built resources of the methods of one run.

    Args:
        reader: Reader model name (budgets are counted in its tokenizer).
        seed: Seed of the random baseline.
        lm: An already loaded reader LM to reuse as scorer (``None`` loads one on demand).
        device: Where the baselines' own models run (MiniLM of the embedding filter, the
            scorer LM of Selective Context and LongLLMLingua): the benchmark puts them on
            SemToken's device so their costs compare like with like.
        encoder_model: Folder of the embedding filter's MiniLM (default: the packaged one).
        documents: The run's distinct documents: every example's context exactly as the
            runner prepares it (after ``max_context_tokens`` truncation), set by
            :meth:`~semtoken_lab.eval.runner.Runner.contexts` before any method is built
            (``semtoken-docs`` ingests them whole); ``None`` outside a run.
    """

    reader: str = "smollm2"
    seed: int = 0
    lm: Any = None
    device: str = "cpu"
    encoder_model: str | None = None
    documents: tuple[str, ...] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def _get(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def tokenizer(self) -> Any:
        """The reader's tokenizer."""
        from semtoken_lab.reader.loading import load_reader_tokenizer

        return self._get("tokenizer", lambda: load_reader_tokenizer(self.reader))

    def counter(self) -> Any:
        """A :class:`semtoken_rag.tokens.TokenCounter` over the reader's tokenizer."""
        from semtoken_rag.tokens import TokenCounter

        return self._get("counter", lambda: TokenCounter(self.tokenizer(), name=self.reader))

    def count(self, text: str) -> int:
        """Reader tokens of ``text``."""
        return int(self.counter().count(text))

    def sentence_model(self) -> Any:
        """MiniLM through sentence-transformers, from the packaged folder (never the hub)."""

        def build() -> Any:
            from semtoken_rag.errors import ModelNotFoundError
            from semtoken_rag.models import ENCODER_PIP, is_local, packaged_encoder_dir
            from sentence_transformers import SentenceTransformer

            folder = self.encoder_model or packaged_encoder_dir()
            if folder is None:
                raise ModelNotFoundError(f"MiniLM is not installed; run `{ENCODER_PIP}`")
            return SentenceTransformer(
                str(folder), device=self.device, local_files_only=is_local(str(folder))
            )

        return self._get("st", build)

    def lm_model(self) -> Any:
        """The reader LM (fp32, on ``device``) for scoring, reused from the reader when given."""

        def build() -> Any:
            if self.lm is not None:
                return self.lm
            import torch

            from semtoken_lab.reader.loading import load_reader_model

            return load_reader_model(
                self.reader, dtype=torch.float32, attn_implementation="sdpa", device=self.device
            )

        return self._get("lm", build)

    def model_dir(self) -> str:
        """Local Hugging Face folder of the reader (GGUF converted once)."""
        from semtoken_lab.reader.loading import resolve_reader

        return self._get("model_dir", lambda: resolve_reader(self.reader)[0])

    def selector(self, max_unit_words: int = 48) -> UnitSelector:
        """The engine's selection and rendering for baselines (no encoder), one per unit size."""
        return self._get(
            f"selector{max_unit_words}",
            lambda: UnitSelector(self.counter(), max_unit_words=max_unit_words),
        )

    def semtoken_parts(self) -> tuple[Any, Any]:
        """One encoder and one fingerprint store shared by SemToken and its ablations.

        Why shared: the ablations change only the selection, not the fingerprints, so encoding
        each context once serves all four variants (and their timings show query-time cost).
        The store is the engine's in-memory cache by exact chunk text (each chunk encoded
        alone), bounded at 512 MiB.
        """

        def build() -> tuple[Any, Any]:
            from semtoken_rag.cache import MemoryFingerprintCache
            from semtoken_rag.config import SemTokenConfig
            from semtoken_rag.encoder import TransformerEncoder

            encoder = TransformerEncoder.from_config(SemTokenConfig())
            return encoder, MemoryFingerprintCache(max_bytes=512 * 2**20)

        return self._get("semtoken", build)
