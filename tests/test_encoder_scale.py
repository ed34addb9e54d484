"""A custom encoder's vectors at any scale give the packaged encoder's results; vectors that
are not real numbers are a typed error.

``ChunkFingerprints`` documents L2-normalised vectors, and the engine's thresholds are cosines
with absolute epsilons: a custom encoder whose vectors had a norm of ``1e-6`` or ``1e12`` changed
every compression of 20 HotpotQA contexts, and ones near the float32 limits overflowed into NaN
scores.  The engine now normalises what an encoder returns (chunks, query vectors and query
words, ingested documents) and leaves normalised rows as they are.  Complex vectors, which
then failed inside numpy (before, their imaginary part was dropped unsaid), and object ones,
which always did, are refused by name, as ingestion refuses them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.core.pooling import unit_rows
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import ChunkFingerprints
from tests.conftest import read_jsonl
from tests.fakes import FakeEncoder, WhitespaceCounter

#: Vector scales a custom encoder may return: subnormal, small, large, near the float32 limit.
SCALES = [1e-40, 1e-6, 1e12, 3e37]


class ScaledEncoder(FakeEncoder):
    """The fake encoder's vectors times ``scale`` (every method the engine calls)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = np.float32(scale)

    def encode_query_words(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
        # (encode_texts too: the fake encodes chunks as it encodes query words)
        return [
            ChunkFingerprints(fp.vectors * self.scale, fp.word_spans)
            for fp in super().encode_query_words(texts)
        ]

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        return super().encode_queries(queries) * self.scale


@pytest.fixture(autouse=True)
def _no_numeric_warnings() -> Iterator[None]:
    """An overflow or an invalid value anywhere in the engine fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.fixture(scope="module")
def hotpot(shared_data: Path) -> list[dict[str, Any]]:
    return read_jsonl(shared_data / "hotpotqa_dev_sample" / "dev.jsonl", limit=6)


def _kept(encoder: Any, rows: list[dict[str, Any]], **cfg: Any) -> list[list[tuple]]:
    comp = Compressor(SemTokenConfig(**cfg), encoder=encoder, counter=WhitespaceCounter())
    out = []
    for r in rows:
        result = comp.compress(r["context"], r["question"], ratio=0.5)
        out.append([(c.text, tuple(map(tuple, c.offsets))) for c in result.chunks])
    return out


def test_unit_rows_keeps_normalised_rows_and_rescales_any_other() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[2] = 0.0
    assert unit_rows(x) is x  # the packaged encoder's output: untouched, not copied
    cases = [(1e-40, np.float32), (3e37, np.float32), (1e200, np.float64), (100, np.int64)]
    for scale, dtype in cases:
        y = unit_rows((x.astype(np.float64) * scale).astype(dtype))
        assert y.dtype == np.float32 and y.shape == x.shape
        norms = np.linalg.norm(y, axis=1)
        np.testing.assert_allclose(np.delete(norms, 2), 1.0, atol=1e-6)
        assert norms[2] == 0.0  # a zero row stays zero
    np.testing.assert_allclose(unit_rows(x[0] * np.float32(1e-30)), x[0], atol=1e-6)  # (d,)
    assert unit_rows(np.zeros((0, 8), np.float64)).dtype == np.float32


@pytest.mark.parametrize("relevance", ["late_interaction", "pooled"])
@pytest.mark.parametrize("scale", SCALES)
def test_compression_does_not_depend_on_the_encoders_scale(
    hotpot: list[dict[str, Any]], scale: float, relevance: str
) -> None:
    want = _kept(FakeEncoder(), hotpot, relevance=relevance)
    assert _kept(ScaledEncoder(scale), hotpot, relevance=relevance) == want


def test_ingested_documents_are_stored_normalised(
    hotpot: list[dict[str, Any]], tmp_path: Path
) -> None:
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, ingest
    from semtoken_rag.store import FingerprintStore

    docs = [r["context"] for r in hotpot]
    enc = ScaledEncoder(1e12)
    with FingerprintStore(tmp_path / "st", codec="float32") as store:
        report = ingest(docs, store, LocalRunner(enc), IngestOptions(progress=False))
        assert report.encoded == len(docs) and report.failed == []
        served = store.lookup(docs, enc.cache_id)
        for fp, ref in zip(served, FakeEncoder().encode_texts(docs), strict=True):
            assert isinstance(fp, ChunkFingerprints)
            np.testing.assert_allclose(fp.vectors, ref.vectors, atol=1e-6)


@pytest.mark.parametrize("scale", [1e-40, 1e12, 1e300])
def test_vectors_written_by_put_are_stored_normalised(
    hotpot: list[dict[str, Any]], tmp_path: Path, scale: float
) -> None:
    """``put`` (and ``encode_documents``, its writer) stores unit vectors whoever calls it: a
    caller's float64 vectors of 1e300 became infinities in float32, or tiny ones were stored
    and served as they came, unlike the engine's."""
    from semtoken_rag.store import FingerprintStore

    docs = [r["context"] for r in hotpot[:5]]
    ref = FakeEncoder().encode_texts(docs)
    scaled = [ChunkFingerprints(fp.vectors.astype(np.float64) * scale, fp.word_spans)
              for fp in ref]  # fmt: skip
    with FingerprintStore(tmp_path / "st", codec="float32") as store:
        store.put(docs, scaled, "custom")
        served = store.lookup(docs, "custom")
    for fp, want in zip(served, ref, strict=True):
        assert isinstance(fp, ChunkFingerprints)
        np.testing.assert_allclose(fp.vectors, want.vectors, atol=1e-6)


class UnrealEncoder(FakeEncoder):
    """The fake encoder with ``where``'s vectors (chunks, query words or pooled queries) cast
    to ``dtype``."""

    def __init__(self, where: str, dtype: str) -> None:
        super().__init__()
        self.where, self.dtype = where, dtype

    def _cast(self, where: str, fps: list[ChunkFingerprints]) -> list[ChunkFingerprints]:
        if where != self.where:
            return fps
        return [ChunkFingerprints(fp.vectors.astype(self.dtype), fp.word_spans) for fp in fps]

    def encode_texts(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
        return self._cast("chunks", FakeEncoder.encode_query_words(self, texts))

    def encode_query_words(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
        return self._cast("query_words", super().encode_query_words(texts))

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        vectors = super().encode_queries(queries)
        return vectors.astype(self.dtype) if self.where == "pooled" else vectors


@pytest.mark.parametrize("dtype", ["complex64", "bool", "object"])
@pytest.mark.parametrize("where", ["chunks", "query_words", "pooled"])
def test_vectors_that_are_not_real_numbers_are_refused_by_name(
    hotpot: list[dict[str, Any]], where: str, dtype: str
) -> None:
    relevance = "pooled" if where == "pooled" else "late_interaction"
    comp = Compressor(
        SemTokenConfig(relevance=relevance), encoder=UnrealEncoder(where, dtype),
        counter=WhitespaceCounter(),
    )  # fmt: skip
    what = "question" if where != "chunks" else "chunks"
    with pytest.raises(InvalidInputError, match=f"produced {dtype} .*{what}.*must be real"):
        comp.compress(hotpot[0]["context"], hotpot[0]["question"], ratio=0.5)


@pytest.mark.slow
def test_real_encoder_scaled_compresses_as_the_real_one(
    real_compressor: Compressor, hotpot: list[dict[str, Any]]
) -> None:
    """The packaged MiniLM behind a wrapper returning its vectors times 1e-6 (an encoder of
    another library's conventions): the same pieces kept as the real engine's."""
    real = real_compressor.encoder

    class Scaled:
        cache_id = f"{real.cache_id}|scaled"  # its own cache keys: nothing of the real one's
        dim = real.dim

        def encode_texts(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
            return [
                ChunkFingerprints(fp.vectors * np.float32(1e-6), fp.word_spans)
                for fp in real.encode_texts(texts)
            ]

        def encode_query_words(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
            return [
                ChunkFingerprints(fp.vectors * np.float32(1e-6), fp.word_spans)
                for fp in real.encode_query_words(texts)
            ]

        def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
            return real.encode_queries(texts) * np.float32(1e-6)

    def kept(encoder: Any) -> list[str]:
        comp = Compressor(SemTokenConfig(), encoder=encoder, counter=real_compressor.counter)
        return [comp.compress(r["context"], r["question"], ratio=0.5).joined() for r in hotpot[:3]]

    assert kept(Scaled()) == kept(real)
