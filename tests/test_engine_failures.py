"""Failure injection: one bad answer from a part (the encoder, a caller mutating what it was
given) must not change any later result of the same engine.  Each later call with the same
inputs equals a fresh engine's result (texts, offsets, kept tokens).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.errors import NonFiniteFingerprintsError
from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.store import FingerprintStore
from semtoken_rag.tokens import TokenCounter
from tests.fakes import FakeEncoder, WhitespaceCounter

CHUNKS = [
    "The ferry left at noon. Nobody waved. The harbour master fed his dog.",
    "Rivers run to the sea. The ferry was late again. Gulls circled the pier all day.",
    "A third chunk about weather. Rain fell on the town. The bakery sold bread.",
]
QUERY = "When did the ferry leave?"
Fps = list[ChunkFingerprints]


def engine(encoder: FakeEncoder | None = None, store=None, **cfg: object) -> Compressor:
    counter = WhitespaceCounter()
    return Compressor(
        SemTokenConfig(**cfg), encoder=encoder or FakeEncoder(), counter=counter, store=store
    )


def signature(result) -> list[tuple]:
    return [(c.text, tuple(map(tuple, c.offsets)), c.kept_tokens) for c in result.chunks]


def signatures(results) -> list[list[tuple]]:
    return [signature(r) for r in results]


class OnceBadEncoder(FakeEncoder):
    """A fake encoder whose first call of ``method`` answers ``bad(real_answer)``."""

    def __init__(self, method: str, bad: Callable) -> None:
        super().__init__()
        self.method, self.bad, self.tripped = method, bad, False

    def _answer(self, method: str, real: Callable, texts: Sequence[str]):
        if method == self.method and not self.tripped:
            self.tripped = True
            return self.bad(real(texts))
        return real(texts)

    def encode_texts(self, texts: Sequence[str]) -> Fps:
        self.calls += len(texts)
        return self._answer("texts", lambda t: FakeEncoder.encode_query_words(self, t), texts)

    def encode_query_words(self, texts: Sequence[str]) -> Fps:
        return self._answer("words", super().encode_query_words, texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._answer("queries", super().encode_queries, texts)


def nan_fps(fps: Fps) -> Fps:
    return [ChunkFingerprints(np.full_like(f.vectors, np.nan), f.word_spans) for f in fps]


def other_dim_fps(fps: Fps) -> Fps:
    return [ChunkFingerprints(np.ones((f.n_words, 16), np.float32), f.word_spans) for f in fps]


def last_word_dropped(fps: Fps) -> Fps:
    return [ChunkFingerprints(f.vectors[:-1], f.word_spans[:-1]) for f in fps]


def first_call_then_next(comp: Compressor, requests: list, **kw: object) -> list:
    with contextlib.suppress(ValueError):  # the bad call may fail or return anything
        comp.compress_many(requests, **kw)
    return signatures(comp.compress_many(requests, **kw))


@pytest.mark.parametrize(
    ("bad", "store", "cfg"),
    [
        (nan_fps, None, {}),
        (nan_fps, None, {"compression_ratio": "auto", "budget_scope": "per_chunk"}),
        (other_dim_fps, None, {}),
        (last_word_dropped, None, {}),
        (other_dim_fps, FingerprintStore, {}),
        (other_dim_fps, FingerprintStore, {"compression_ratio": "auto"}),
    ],
)
def test_a_bad_encoder_answer_for_chunks_is_not_kept(bad, store, cfg) -> None:
    """NaN vectors (an fp16 overflow), another dimension or a dropped word, once: the cache
    kept them and served them to every later call (NaN: other texts; another dimension: every
    later call failed)."""
    requests = [(CHUNKS, QUERY)]
    comp = engine(OnceBadEncoder("texts", bad), store=store() if store else None, **cfg)
    want = signatures(engine(**cfg).compress_many(requests, ratio=1.0))
    assert first_call_then_next(comp, requests, ratio=1.0) == want
    assert signatures(comp.compress_many(requests)) == signatures(
        engine(**cfg).compress_many(requests)
    )


@pytest.mark.parametrize("cfg", [{}, {"compression_ratio": "auto", "budget_scope": "per_chunk"}])
def test_nan_from_the_encoder_is_a_typed_error_and_nothing_is_stored(cfg) -> None:
    """NaN or infinity from the encoder (an overflow in float16) gave that call a compression
    computed from NaN, without a word; ingestion already refused such fingerprints."""
    for bad_value in (np.nan, np.inf):

        def bad(fps: Fps, value: float = bad_value) -> Fps:
            out = list(fps)
            out[1] = ChunkFingerprints(np.full_like(fps[1].vectors, value), fps[1].word_spans)
            return out

        store = FingerprintStore(codec="float32")
        comp = engine(OnceBadEncoder("texts", bad), store=store, **cfg)
        with pytest.raises(NonFiniteFingerprintsError, match=r"1 of 3 chunks .*'Rivers run"):
            comp.compress(CHUNKS, QUERY)
        assert len(store) == 0
        assert signature(comp.compress(CHUNKS, QUERY)) == signature(
            engine(**cfg).compress(CHUNKS, QUERY)
        )


@pytest.mark.parametrize(
    ("method", "relevance"), [("words", "late_interaction"), ("queries", "pooled")]
)
def test_nan_query_vectors_are_a_typed_error(method: str, relevance: str) -> None:
    """The question's vectors NaN: the relevance of every unit was NaN, the kept text arbitrary."""
    bad = nan_fps if method == "words" else (lambda v: np.full_like(v, np.nan))
    comp = engine(OnceBadEncoder(method, bad), relevance=relevance)
    with pytest.raises(NonFiniteFingerprintsError, match="question 'When did the ferry"):
        comp.compress(CHUNKS, QUERY)
    want = signature(engine(relevance=relevance).compress(CHUNKS, QUERY))
    assert signature(comp.compress(CHUNKS, QUERY)) == want


def _shifted(fps):
    return fps[1:]


@pytest.mark.parametrize(
    ("method", "bad", "relevance"),
    [
        ("words", nan_fps, "late_interaction"),
        ("words", other_dim_fps, "late_interaction"),
        ("queries", lambda v: np.full_like(v, np.nan), "pooled"),
        ("queries", lambda v: np.ones((len(v), 16), np.float32), "pooled"),
        ("queries", _shifted, "pooled"),
    ],
)
def test_a_bad_query_embedding_is_not_memoised(method: str, bad, relevance: str) -> None:
    """Several requests sharing chunks, one query pass answering NaN, another dimension or one
    vector short: the memo kept those (a short answer: the first questions memoised with their
    neighbours' vectors before the length check failed)."""
    requests = [(CHUNKS[:2], QUERY), (CHUNKS[1:], "Where did the gulls circle?"), (CHUNKS, None)]
    comp = engine(OnceBadEncoder(method, bad), relevance=relevance)
    want = signatures(engine(relevance=relevance).compress_many(requests))
    assert first_call_then_next(comp, requests) == want


def overwrite(array: np.ndarray, value: object) -> None:
    """Write ``value`` over ``array``, as a careless caller would; refusing is right too."""
    try:
        array[...] = value
    except ValueError as exc:
        assert "read-only" in str(exc)


def test_fingerprints_handed_out_cannot_change_later_results() -> None:
    """``Compressor.fingerprints`` returned the cache's own arrays, writable."""
    comp, want = engine(), signature(engine().compress(CHUNKS, QUERY))
    fps, _ = comp.fingerprints(CHUNKS)
    overwrite(fps[0].vectors, fps[0].vectors[::-1])
    overwrite(fps[1].word_spans, 0)
    assert signature(comp.compress(CHUNKS, QUERY)) == want


@pytest.mark.parametrize("cache_embeddings", [True, False])
def test_prepared_arrays_cannot_change_later_results(cache_embeddings: bool) -> None:
    """``prepare`` returned memoised word spans, costs and fingerprints, writable (without a
    cache the prepare memo held the encoder's word spans as they came)."""
    comp = engine(cache_embeddings=cache_embeddings)
    want = signature(engine().compress(CHUNKS, QUERY))
    first = comp.prepare(CHUNKS).chunks
    overwrite(first[0].word_costs, 50)
    overwrite(first[1].word_spans, 0)
    overwrite(first[2].fingerprints.vectors, 0.0)
    assert signature(comp.compress(CHUNKS, QUERY)) == want


def test_arrays_prepared_without_fingerprints_cannot_change_later_results() -> None:
    """``prepare(fingerprints=False)`` returned the memoised word spans, writable."""
    comp, want = engine(), engine().prepare(CHUNKS, fingerprints=False).unit_texts()
    overwrite(comp.prepare(CHUNKS, fingerprints=False).chunks[0].word_spans, 0)
    assert comp.prepare(CHUNKS, fingerprints=False).unit_texts() == want


class _SpaceTokenizer:
    """A fast tokenizer stand-in: one token per whitespace-separated run, with offsets."""

    is_fast = True
    unk_token_id = None

    def __call__(self, text: str, **_: object) -> dict:
        offs = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        return {"input_ids": list(range(len(offs))), "offset_mapping": offs}


def test_token_counter_memo_cannot_be_changed_by_a_caller() -> None:
    """``TokenCounter.word_costs`` returned its memo's array, writable."""
    counter = TokenCounter(_SpaceTokenizer())
    text = CHUNKS[0]
    spans = np.array([[m.start(), m.end()] for m in re.finditer(r"\S+", text)])
    costs = counter.word_costs(text, spans)
    want = costs.copy()
    overwrite(costs, 7)
    assert counter.word_costs(text, spans).tolist() == want.tolist()


@pytest.mark.slow
def test_a_real_encoder_gone_to_nan_is_a_typed_error(tmp_path) -> None:
    """The real MiniLM with weights overflowed to infinity (what float16 does past 65,504),
    through the real tokenizer, windows and pooling: the compression is refused, by type, and
    the real store holds nothing."""
    import torch

    from semtoken_rag.encoder import TransformerEncoder

    encoder = TransformerEncoder()  # its own copy of the weights: the shared one stays sound
    with torch.no_grad():
        encoder.model.embeddings.word_embeddings.weight.mul_(1e38)
    with FingerprintStore(tmp_path / "fp") as store:
        comp = Compressor(SemTokenConfig(), encoder=encoder, store=store)
        with pytest.raises(NonFiniteFingerprintsError, match="NaN or infinite"):
            comp.compress(CHUNKS, QUERY)
        assert len(store) == 0


def test_the_memory_cache_refuses_nan_put_directly() -> None:
    """``MemoryFingerprintCache.put`` kept NaN a caller put there (the store refuses it), and
    the engine compressed from it without a word: every later call of those texts."""
    from semtoken_rag.cache import MemoryFingerprintCache

    enc = FakeEncoder()
    cache = MemoryFingerprintCache()
    cache.put(CHUNKS, nan_fps(enc.encode_texts(CHUNKS)), enc.cache_id)
    assert len(cache) == 0
    comp = engine(store=cache)
    assert signature(comp.compress(CHUNKS, QUERY)) == signature(engine().compress(CHUNKS, QUERY))


@pytest.mark.parametrize("method", ["texts", "words"])
def test_cli_compress_with_an_encoder_gone_to_nan(method, tmp_path, monkeypatch, capsys) -> None:
    """One ``error:`` line and status 1 (the encoder failed, the input is fine), nothing on
    stdout; the remedy the message names, ``--encoder-dtype``, is an option of ``compress``
    (it was one of ``ingest`` only)."""
    from semtoken_rag.cli import compress as compress_cli
    from semtoken_rag.cli.main import build_parser, main

    def nan_engine(config, store=None):
        assert config.encoder.dtype == "float32"  # --encoder-dtype reached the config
        bad = OnceBadEncoder(method, nan_fps)
        return Compressor(config, encoder=bad, counter=WhitespaceCounter(), store=store)

    monkeypatch.setattr(compress_cli, "Compressor", nan_engine)
    files = []
    for i, chunk in enumerate(CHUNKS):
        (tmp_path / f"c{i}.txt").write_text(chunk, encoding="utf-8")
        files.append(str(tmp_path / f"c{i}.txt"))
    argv = ["compress", *files, "-q", QUERY, "--encoder-dtype", "float32", "--json"]
    assert build_parser(argv).parse_args(argv).encoder_dtype == "float32"
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("error: the encoder produced NaN") and "--encoder-dtype float32" in err
