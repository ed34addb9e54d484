"""Compression methods compared by the harness: a registry of factories.

Every method is a callable ``(chunks, question, budget) -> str``: the chunks of one context
(one chunk in ``context`` mode, the retrieved chunks in ``rag`` mode), the question, and the
budget in **reader tokens**; it returns the compressed context.  All budgets are counted with
the reader's tokenizer so every method is held to the same achieved ratio (the runner records
it per example and the smoke test checks it is within 0.03 of the target).

Factories take a :class:`MethodEnv` that builds heavy resources (MiniLM, the reader LM,
LongLLMLingua, the SemToken encoder) lazily and once, so a run that skips a method never loads
its model; the runner sets :attr:`MethodEnv.documents` (the run's documents) before it builds
any method.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from semtoken_lab.eval.selection import CHUNK_SEP, UnitSelector

logger = logging.getLogger(__name__)


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


def _joined(chunks: Sequence[str]) -> str:
    return CHUNK_SEP.join(chunks)


def make_none(env: MethodEnv) -> Method:
    """No compression: the full context."""
    return lambda chunks, question, budget: _joined(chunks)


def make_closed_book(env: MethodEnv) -> Method:
    """No context at all: the floor of every quality measure."""
    return lambda chunks, question, budget: ""


def _truncate(head_share: float) -> Callable[[MethodEnv], Method]:
    """Keep the first ``head_share`` of the budget from the start and the rest from the end,
    in reader tokens."""

    def factory(env: MethodEnv) -> Method:
        def run(chunks: Sequence[str], question: str, budget: int) -> str:
            tok = env.tokenizer()
            text = _joined(chunks)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            if len(ids) <= budget:
                return text
            head_n = int(budget * head_share)  # budget // 2 for the middle cut, as before
            head = tok.decode(ids[:head_n], skip_special_tokens=True)
            tail_n = budget - head_n
            tail = tok.decode(ids[len(ids) - tail_n :], skip_special_tokens=True) if tail_n else ""
            return head + tail

        return run

    return factory


#: LongBench's middle truncation: first half and last half of the budget.
make_truncate = _truncate(0.5)
#: Keep the lead: the first ``budget`` tokens (summaries often favour it).
make_truncate_lead = _truncate(1.0)


def make_random(env: MethodEnv) -> Method:
    """Random sentence drop to the budget; seeded by the run seed and the question."""

    def run(chunks: Sequence[str], question: str, budget: int) -> str:
        selector = env.selector()
        units = selector.units(chunks)
        rng = np.random.default_rng([env.seed, zlib.crc32(question.encode("utf-8"))])
        return selector.select(units, rng.random(len(units.unit_texts())), budget)

    return run


def make_embed_filter(env: MethodEnv) -> Method:
    """Sentence-level query similarity with MiniLM, top sentences in original order.

    What LangChain's ``EmbeddingsFilter`` and LlamaIndex's ``SentenceEmbeddingOptimizer`` do,
    held to the token budget instead of a similarity threshold; units are the same sentences
    SemToken uses (:func:`semtoken_rag.core.segment.find_units`).
    """

    def run(chunks: Sequence[str], question: str, budget: int) -> str:
        selector = env.selector()
        units = selector.units(chunks)
        sents = units.unit_texts()
        if not sents:
            return ""
        st = env.sentence_model()
        vecs = st.encode([question, *sents], normalize_embeddings=True, batch_size=64)
        scores = np.asarray(vecs[1:], dtype=np.float32) @ np.asarray(vecs[0], dtype=np.float32)
        return selector.select(units, scores, budget)

    return run


def make_selective_context(env: MethodEnv) -> Method:
    """Selective Context with the reader LM as the self-information model."""
    from semtoken_lab.eval.selective import PHRASE_WORDS, SelectiveContext

    return SelectiveContext(env.lm_model(), env.tokenizer(), env.selector(PHRASE_WORDS))


def make_longllmlingua(env: MethodEnv) -> Method:
    """LongLLMLingua with the reader as scorer, rate steered to the reader-token budget."""
    from semtoken_lab.eval.lingua import LongLLMLingua

    return LongLLMLingua(env.model_dir(), env.counter(), device=env.device)


class SemTokenMethod:
    """A SemToken variant: one :class:`~semtoken_rag.Compressor` over its store.

    Args:
        comp: The compressor.
        use_query: Pass the question (``False``: the query-free ablation).
        ingest_chunks: Ingest each call's chunks into the compressor's store first (each a
            short document), so every fingerprint is read back out of the store.
        from_store: Every chunk is expected to be served by the store (the store variants):
            a call that had to encode a chunk is logged as a warning.

    Attributes:
        calls: Compressions run.
        encoder_calls: Chunks encoded at query time over all calls (a chunk the store did not
            serve; 0 for ``semtoken-docs`` in ``rag`` mode, whose chunks are verbatim windows
            of the ingested documents).
        calls_missed: Calls with at least one such chunk.
    """

    def __init__(
        self, comp: Any, *, use_query: bool = True, ingest_chunks: bool = False,
        from_store: bool = False, name: str = "semtoken",
    ) -> None:  # fmt: skip
        self.comp = comp
        self.use_query = use_query
        self.ingest_chunks = ingest_chunks
        self.from_store = from_store
        self.name = name
        self.calls = self.encoder_calls = self.calls_missed = 0
        self._lock = threading.Lock()

    def __call__(self, chunks: Sequence[str], question: str, budget: int) -> str:
        """Compress for ``question`` under ``budget`` reader tokens."""
        return self._run(chunks, question, budget=budget)

    def auto(self, chunks: Sequence[str], question: str) -> str:
        """Compress for ``question`` with the engine's ``compression_ratio="auto"`` budget."""
        return self._run(chunks, question, ratio="auto")

    def _run(self, chunks: Sequence[str], question: str, **budget: Any) -> str:
        if self.ingest_chunks:
            from semtoken_rag.ingestion import IngestOptions

            self.comp.ingest(list(chunks), IngestOptions(progress=False))
        query = question if self.use_query else None
        res = self.comp.compress(list(chunks), query, **budget)
        with self._lock:
            self.calls += 1
            self.encoder_calls += res.encoder_calls
            self.calls_missed += bool(res.encoder_calls)
        if self.from_store and res.encoder_calls:
            logger.warning(
                "%s: %d of %d chunks were not served from the store (encoded alone) for %r",
                self.name, res.encoder_calls, len(chunks), question[:80],
            )  # fmt: skip
        return str(res.joined(CHUNK_SEP))

    def summary(self) -> str:
        """One line: calls, and chunks the store did not serve."""
        return (
            f"{self.name}: {self.calls} compressions, {self.encoder_calls} chunks encoded at "
            f"query time ({self.calls_missed} compressions with a chunk not from the store)"
        )


def _semtoken(
    use_query: bool = True,
    store_codec: str | None = None,
    documents: bool = False,
    name: str = "semtoken",
    **overrides: Any,
) -> Callable[[MethodEnv], Method]:
    """SemToken with ``overrides`` of its config.

    Args:
        use_query: Pass the question (``False``: the query-free ablation).
        store_codec: Read every fingerprint back from an in-memory store of this codec
            (:mod:`semtoken_lab.eval.store_methods`): each example's chunks are ingested first,
            so the compressor sees exactly what a deployment that ingested its corpus gets.
        documents: Read every fingerprint from a float32 in-memory store into which every
            document of the run (:attr:`MethodEnv.documents`) was ingested whole before the
            first example: each chunk is served sliced from its document, never encoded alone
            (:func:`semtoken_lab.eval.store_methods.document_store`).
        name: The method's name (in its log lines).
        overrides: :class:`~semtoken_rag.config.SemTokenConfig` fields.
    """

    def factory(env: MethodEnv) -> Method:
        from semtoken_rag.compressor import Compressor
        from semtoken_rag.config import SemTokenConfig

        encoder, store = env.semtoken_parts()
        if store_codec is not None:
            from semtoken_lab.eval.store_methods import trained_store

            store = trained_store(encoder, store_codec)
        elif documents:
            from semtoken_rag.errors import InvalidInputError

            from semtoken_lab.eval.store_methods import document_store

            if env.documents is None:
                raise InvalidInputError(
                    f"{name} needs the run's documents (MethodEnv.documents, set by "
                    "Runner.contexts before the methods are built)"
                )
            store = document_store(encoder, env.documents)
        cfg = SemTokenConfig(count_tokenizer=env.reader, **overrides)
        comp = Compressor(cfg, encoder=encoder, store=store, counter=env.counter())
        return SemTokenMethod(
            comp,
            use_query=use_query,
            ingest_chunks=store_codec is not None,
            from_store=store_codec is not None or documents,
            name=name,
        )

    return factory


#: The seed's entropy settings (the defaults before the measurements of docs/results.md).
SEED_ENTROPY: dict[str, Any] = {"entropy_weight": 0.1, "entropy_threshold": 0.5}

#: Codecs of the ``semtoken-store-<codec>`` variants (the store's fidelity check, issue 13).
STORE_VARIANT_CODECS = ("pq64", "pq96", "sq4", "float16")


#: Method name -> factory.  Order is the report order.
METHODS: dict[str, Callable[[MethodEnv], Method]] = {
    "none": make_none,
    "closed-book": make_closed_book,
    "truncate": make_truncate,
    "truncate-lead": make_truncate_lead,
    "random": make_random,
    "embed-filter": make_embed_filter,
    "selective-context": make_selective_context,
    "longllmlingua": make_longllmlingua,
    "semtoken": _semtoken(),
    # The seed's entropy stage (weight 0.1, collapse below 0.5 x median span entropy), off by
    # default since the measurements of docs/results.md; with it off, merging changes nothing,
    # so the merging ablation is measured with entropy on.
    "semtoken-entropy": _semtoken(**SEED_ENTROPY),
    "semtoken-entropy-nomerge": _semtoken(similarity_threshold=1.0, **SEED_ENTROPY),
    "semtoken-noquery": _semtoken(use_query=False),
    "semtoken-pooled": _semtoken(relevance="pooled"),
    "semtoken-relevance": _semtoken(objective="relevance"),
    "semtoken-coverage": _semtoken(objective="coverage"),
    **{
        f"semtoken-store-{c}": _semtoken(store_codec=c, name=f"semtoken-store-{c}")
        for c in STORE_VARIANT_CODECS
    },
    # Fingerprints sliced from whole documents ingested before the first example (issue 23,
    # point 3), against ``semtoken``'s chunks encoded alone.
    "semtoken-docs": _semtoken(documents=True, name="semtoken-docs"),
}

#: Methods whose output does not depend on the budget (run once per example, not per ratio).
RATIO_FREE = frozenset({"none", "closed-book"})


def build_method(name: str, env: MethodEnv) -> Method:
    """Instantiate a registered method.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        factory = METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None
    return factory(env)
