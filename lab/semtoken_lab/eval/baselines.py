"""The baselines SemToken is compared with, as method factories (``MethodEnv -> Method``).

From floor to ceiling: no context (``closed-book``), cuts by position (``truncate``,
``truncate-lead``), a random sentence drop, query similarity with MiniLM (``embed-filter``), and
the published prompt compressors (Selective Context, LongLLMLingua).  All are held to the same
budget in reader tokens (:mod:`semtoken_lab.eval.method_env`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np

from semtoken_lab.eval.method_env import Method, MethodEnv
from semtoken_lab.eval.selection import CHUNK_SEP


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
