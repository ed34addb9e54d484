"""Hostile review of the engine API, round 2: what broke, pinned.

* ``ratio="auto"`` with ``budget_scope="per_chunk"`` and trailing chunks without a unit (empty
  or blank): the core shared the budget only up to the last chunk holding a unit, so rendering
  failed with an ``IndexError`` (or reported a joint budget for one non-empty chunk).
* A configured ``count_tokenizer`` built the whole encoder (model load, weights digest) just to
  count, so ``count_tokens`` and ``prepare(..., fingerprints=False)`` loaded a model they never
  use.
* A context prepared by an encoder of another dimension, planned by this compressor, failed in
  numpy's ``matmul`` with an untyped ``ValueError``.
"""

from __future__ import annotations

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.errors import InvalidInputError
from tests.fakes import FakeEncoder, WhitespaceCounter


def fake(dim: int = 32, **config: object) -> Compressor:
    return Compressor(
        SemTokenConfig(**config), encoder=FakeEncoder(dim), counter=WhitespaceCounter()
    )


# -- auto, per chunk, trailing chunks without a unit ---------------------------------------
@pytest.mark.parametrize(
    "chunks",
    [
        ["Alpha beta. Gamma delta kappa.", "Epsilon zeta eta.", ""],
        ["Alpha beta. Gamma delta kappa.", "Epsilon zeta eta.", "  \n", ""],
        ["Alpha beta. Gamma delta kappa.", ""],
        ["", "Alpha beta. Gamma delta kappa.", "\t"],
        ["", " "],
    ],
)
@pytest.mark.parametrize("query", [None, "kappa"])
def test_auto_per_chunk_shares_every_chunk(chunks: list[str], query: str | None) -> None:
    comp = fake(budget_scope="per_chunk")
    res = comp.compress(chunks, query, ratio="auto")
    shares = [c.budget_tokens for c in res.chunks]
    assert all(s is not None for s in shares), shares  # one share per chunk, as fixed budgets
    assert sum(s or 0 for s in shares) == res.budget_tokens
    for text, chunk in zip(chunks, res.chunks, strict=True):
        assert chunk.kept_tokens <= (chunk.budget_tokens or 0) + chunk.forced_tokens
        if not text.strip():
            assert chunk.budget_tokens == 0 and chunk.text == ""
    plan = comp.plan(comp.prepare(chunks), query, ratio="auto")
    assert plan.budgets.shape == (len(chunks),)


def test_auto_per_chunk_from_the_config_and_in_compress_many() -> None:
    comp = fake(budget_scope="per_chunk", compression_ratio="auto")
    chunks = ["Alpha beta. Gamma delta kappa.", "Epsilon zeta eta.", ""]
    why: list = []
    many = comp.compress_many([(chunks, "kappa"), (chunks[::-1], None)], explain=why)
    assert [len(r.chunks) for r in many] == [3, 3] and len(why) == 2
    assert all(c.budget_tokens is not None for r in many for c in r.chunks)


def test_auto_joint_budget_stays_one_number() -> None:
    res = fake().compress(["Alpha beta. Gamma delta kappa.", "Zeta.", ""], "kappa", ratio="auto")
    assert [c.budget_tokens for c in res.chunks] == [None, None, None]
    plan = fake().plan(fake().prepare(["", ""]), None, ratio="auto")
    assert plan.budgets.shape == (1,)


# -- a named count tokenizer loads no encoder ----------------------------------------------
@pytest.mark.slow  # loads the SmolLM2 tokenizer
def test_a_named_count_tokenizer_counts_without_loading_the_encoder(monkeypatch) -> None:
    import semtoken_rag.compressor as compressor_module

    def no_encoder(config: SemTokenConfig) -> None:
        raise AssertionError("the encoder was loaded to count tokens")

    monkeypatch.setattr(compressor_module, "load_encoder", no_encoder)
    comp = Compressor(SemTokenConfig(count_tokenizer="smollm2"))
    assert comp.count_tokens("Hello world, twice over.") > 0
    prepared = comp.prepare(["Alpha beta gamma. Delta epsilon."], fingerprints=False)
    res = comp.render(comp.plan(prepared, scores=[1.0, 0.0], budget=50))
    assert res.chunks[0].offsets and comp._encoder is None


def test_without_a_named_tokenizer_the_encoders_own_counts() -> None:
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder())  # a fake has no tokenizer
    with pytest.raises(InvalidInputError, match="no tokenizer"):
        comp.count_tokens("x")


# -- a context prepared by another encoder ---------------------------------------------------
@pytest.mark.parametrize("query", [None, "kappa"])
def test_planning_another_encoders_context_is_a_typed_error(query: str | None) -> None:
    prepared = fake(32).prepare(["Alpha beta. Gamma delta kappa.", "Zeta eta."])
    other = fake(64)
    with pytest.raises(InvalidInputError, match=r"dimension \[32\], the encoder 64"):
        other.plan(prepared, query, ratio=0.5)
    res = other.render(other.plan(other.prepare(["Alpha beta."]), query, ratio=0.5))
    assert len(res.chunks) == 1
    assert fake(32).plan(prepared, query, ratio=0.5).arrays.word_vectors.shape[1] == 32


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["Zeta eta.", "Omega."], r"subset: 'Omega.' is not a chunk of this context"),
        ("Zeta eta.", "texts must be a sequence of strings, got one str"),
        ([b"Zeta eta."], r"texts\[0\] is a bytes, not a str"),
    ],
)
def test_a_subset_of_texts_the_context_does_not_hold_is_a_typed_error(texts, message) -> None:
    """``PreparedContext.subset`` (how one batched ``prepare`` serves many requests) raised a
    bare ``KeyError`` for a text the context does not hold."""
    prepared = fake(32).prepare(["Alpha beta. Gamma delta kappa.", "Zeta eta."])
    with pytest.raises(InvalidInputError, match=message):
        prepared.subset(texts)
    assert [c.text for c in prepared.subset(["Zeta eta.", "Zeta eta."]).chunks] == ["Zeta eta."] * 2


def test_a_context_without_fingerprints_plans_with_scores_on_any_engine() -> None:
    prepared = fake(32).prepare(["Alpha beta. Gamma delta."], fingerprints=False)
    plan = fake(64).plan(prepared, scores=np.asarray([0.0, 1.0]), budget=2)
    assert fake(64).render(plan).chunks[0].text == "Gamma delta."


# -- word units and the lexical skip -----------------------------------------------------------
def test_word_units_keep_repeated_words_at_ratio_one() -> None:
    """A word unit is shorter than a shingle, so it was one shingle of itself: with the lexical
    skip on (the default), every repeat of a word was dropped as repeated text, even at ratio
    1 ("the cat saw the dog" lost its second "the").  The skip does not apply to word units."""
    text = "the cat saw the dog and the bird saw the cat"
    for lexical in (0.8, None):
        comp = fake(unit="word", dedup_threshold=None, lexical_dedup_threshold=lexical)
        res = comp.compress([text], "cat", ratio=1.0)
        assert res.chunks[0].text.split() == text.split(), lexical
    sentences = fake(dedup_threshold=None).compress(["A cat sat. A cat sat."], None, ratio=1.0)
    assert sentences.chunks[0].text.split() == ["A", "cat", "sat."]  # sentences: still skipped


# -- a put the store refuses ---------------------------------------------------------------------
def test_compress_succeeds_when_the_store_refuses_to_keep_new_fingerprints(tmp_path, caplog):
    """The engine puts the misses it encoded back into the store; a put the store refuses
    (another process holds its lock past ``lock_timeout``, or the store was opened before this
    process forked) raised :class:`StoreError` out of ``compress``: a request failed because a
    cache could not be written.  It is logged, and the result is the one without a store."""
    import logging

    from filelock import FileLock

    from semtoken_rag.store import FingerprintStore

    chunks = ["Alpha beta gamma. Delta kappa lambda.", "Epsilon zeta eta theta."]
    store = FingerprintStore(tmp_path, codec="float16", lock_timeout=0.1)
    comp = Compressor(
        SemTokenConfig(), encoder=FakeEncoder(32), counter=WhitespaceCounter(), store=store
    )
    held = FileLock(str(tmp_path / ".lock"))
    held.acquire()
    try:
        with caplog.at_level(logging.WARNING):
            res = comp.compress(chunks, "kappa", ratio=0.5)
    finally:
        held.release()
    assert "were not stored" in caplog.text and "timed out waiting for the lock" in caplog.text
    assert res.texts == fake().compress(chunks, "kappa", ratio=0.5).texts
    assert len(store) == 0
    comp.compress(chunks, "kappa", ratio=0.5)  # the lock is free: the misses are kept now
    assert len(store) == 2
    store.close()


def test_a_put_waits_seconds_not_lock_timeout_for_another_writer(tmp_path, caplog, monkeypatch):
    """With the default ``lock_timeout`` (600 s), a request whose misses the engine puts back
    waited up to ten minutes behind another process's write (an ingestion training its codec,
    a vacuum) to keep a cache entry.  The put now waits ``PUT_WAIT_S``; other writes still wait
    ``lock_timeout`` (ingestion must not give up)."""
    import logging

    from filelock import FileLock

    from semtoken_rag.store import FingerprintStore
    from semtoken_rag.store import store as store_module

    monkeypatch.setattr(store_module, "PUT_WAIT_S", 0.2)  # 2 s by default: kept short here
    waits: list[float | None] = []
    acquire = FileLock.acquire

    def recording(self, timeout=None, *args, **kwargs):
        waits.append(timeout)
        return acquire(self, timeout, *args, **kwargs)

    chunks = ["Alpha beta gamma. Delta kappa lambda.", "Epsilon zeta eta theta."]
    store = FingerprintStore(tmp_path, codec="float16")  # lock_timeout: 600 s
    comp = Compressor(
        SemTokenConfig(), encoder=FakeEncoder(32), counter=WhitespaceCounter(), store=store
    )
    held = FileLock(str(tmp_path / ".lock"))
    held.acquire()
    try:
        monkeypatch.setattr(FileLock, "acquire", recording)
        with caplog.at_level(logging.WARNING):
            res = comp.compress(chunks, "kappa", ratio=0.5)
    finally:
        held.release()
    assert waits == [0.2] and "timed out waiting for the lock" in caplog.text
    assert res.texts == fake().compress(chunks, "kappa", ratio=0.5).texts and len(store) == 0
    comp.compress(chunks, "kappa", ratio=0.5)
    assert len(store) == 2 and waits[1] == 0.2  # the put's first take; the rest are nested
    store.close()


def test_lookups_of_other_threads_run_while_a_put_encodes(tmp_path, monkeypatch):
    """The put's codes are made outside the store's locks: holding them while encoding made a
    lookup of another thread wait for the whole put (measured: 8 -> 98 ms with pq64)."""
    import threading

    from semtoken_rag.store import FingerprintStore
    from semtoken_rag.store import store as store_module

    enc = FakeEncoder(32)
    stored, new = ["Alpha beta gamma delta."], ["Epsilon zeta eta theta."]
    store = FingerprintStore(tmp_path, codec="float16")
    store.put(stored, enc.encode_texts(stored), enc.cache_id)
    served: list[object] = []
    real = store_module.encode_by_dim

    def encode_while_another_thread_looks_up(*args, **kwargs):
        other = threading.Thread(target=lambda: served.extend(store.lookup(stored, enc.cache_id)))
        other.start()
        other.join(timeout=10)  # a lookup waiting for this put's locks would wait here
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "encode_by_dim", encode_while_another_thread_looks_up)
    store.put(new, enc.encode_texts(new), enc.cache_id)
    assert len(served) == 1 and served[0] is not None and len(store) == 2
    store.close()


# -- tiny weights ---------------------------------------------------------------------------------
@pytest.mark.parametrize("objective", ["relevance", "summary"])
def test_tiny_weights_rank_as_their_ratios_do(objective: str) -> None:
    """The selection rounds scores to 5 decimals (its tie rule), so with
    ``relevance_weight=1e-6`` the scores all rounded to 0 and position decided the
    order: another text was kept than with a weight of 1.  A ranking depends only on the
    weights' ratios, so both keep the same text now."""
    text = " ".join(
        f"Sentence {i} talks about {w} and {w}s in the {k} valley." for i, (w, k) in
        enumerate(zip(["rivers", "mills", "grain", "maps", "floods", "banks", "roads", "farms"]
                      * 3, ["north", "south", "east", "west"] * 6))
    )  # fmt: skip
    chunks = [text[: len(text) // 2], text[len(text) // 2 :]]
    kept = {}
    for scale in (1.0, 1e-6):
        comp = fake(objective=objective, relevance_weight=scale, lead_weight=scale)
        kept[scale] = comp.compress(chunks, "grain in the east valley", ratio=0.3).texts
    assert kept[1e-6] == kept[1.0]
