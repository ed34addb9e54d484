"""Ray ingestion and the store's codec (issue 25): the actors apply the codec, the driver only
writes, and the result is the single process's, bit for bit.

Real MiniLM, a real local Ray of 2 CPUs, real stores:

* **Bit-identical entries**: the same documents ingested through Ray and through
  ``Compressor.ingest`` into two fresh pq64 stores (trained from a sample small enough for a
  test) serve identical float32 vectors for every document and for chunks cut from them, with
  identical sizes and codebooks.  (The exact float32 codec: ``test_ray_ingest.py``.)
* **Codes, never float32, reach the writer**: every row the driver receives from the actors is
  an ``EncodedDocument`` whose blocks hold ``n_words * code_size`` bytes of the store's codebook
  (64 bytes per 384-dim word with pq64; float16 only for the sample that trains it and for
  blocks the fidelity guard keeps).
* **A store whose codec is not trained yet, and too few words to train it**: stored in float16,
  ``report.trained`` false, no FAISS error; a later ingestion that brings the staged words to
  ``train_min`` trains it, exactly as in one process.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.ray_helpers import (
    RecordWhere,
    assert_same_lookups,
    codebooks,
    narrativeqa_chunks,
    new_store,
    small_pq,
    sub_chunks,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

N = 12
BATCH = 3
#: pq64 trains from the first five 120-word documents (the sample batch).
TRAIN_MIN = 512
DIM = 384
#: Code bytes per word of each codebook at MiniLM's 384 dimensions.
CODE_BYTES = {"float32": 4 * DIM, "float16": 2 * DIM, "pq64": 64}


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> list[str]:
    return narrativeqa_chunks(shared_data, N)


@pytest.fixture(scope="module")
def encoder() -> Any:
    """The single process's encoder (loaded once for the module)."""
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.encoder import TransformerEncoder

    return TransformerEncoder.from_config(SemTokenConfig())


def _opts(batch_size: int = BATCH) -> Any:
    from semtoken_rag.ingestion import IngestOptions

    return IngestOptions(batch_size=batch_size, progress=False)


def _local_ingest(encoder: Any, path: Path, texts: list[str]) -> Any:
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.store import FingerprintStore

    with FingerprintStore(path) as store:
        return Compressor(SemTokenConfig(), encoder=encoder, store=store).ingest(texts, _opts())


@dataclass
class Pair:
    """One Ray and one single-process ingestion of the same documents into fresh stores."""

    ray: Path
    local: Path
    ray_report: Any
    local_report: Any
    received: list[dict[str, np.ndarray]] = field(default_factory=list)
    #: ``(task or actor, texts)`` of every batch the workers encoded, in order of encoding.
    ran: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture(scope="module")
def pair(
    ray_local: Any, docs: list[str], encoder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Pair:
    """Ingest through Ray (recording, on the driver, every batch the workers send back) and in
    this process."""
    from semtoken_rag.distributed import RayOptions, ray_ingest

    root = tmp_path_factory.mktemp("pq64")
    received: list[dict[str, np.ndarray]] = []
    module = importlib.import_module("semtoken_rag.distributed.ingest")
    real = module.batch_result

    def recording(batch: dict[str, np.ndarray]) -> Any:
        received.append(batch)
        return real(batch)

    where = type("Where", (RecordWhere,), {"log": str(root / "where.log")})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "batch_result", recording)
        # One actor (two sharing the batches are test_ray_ingest.py's).
        ray_report = ray_ingest(docs, new_store(root / "ray", small_pq(TRAIN_MIN)),
                                ray=RayOptions(actors=1), options=_opts(),
                                actor_class=where)  # fmt: skip
    local_report = _local_ingest(encoder, new_store(root / "local", small_pq(TRAIN_MIN)), docs)
    ran = (root / "where.log").read_text(encoding="utf-8").split()
    return Pair(root / "ray", root / "local", ray_report, local_report, received,
                list(zip(ran[::2], map(int, ran[1::2]), strict=True)))  # fmt: skip


def test_ray_and_single_process_stores_are_bit_identical(pair: Pair, docs: list[str]) -> None:
    from semtoken_rag.store import FingerprintStore

    r, loc = pair.ray_report, pair.local_report
    assert r.cache_id == loc.cache_id
    for name in ("documents", "encoded", "words", "batches", "trained", "failed"):
        assert getattr(r, name) == getattr(loc, name), name
    assert r.encoded == N and r.trained
    # The codebooks: the same digests (pq64: trained from the same deterministic sample).
    books = codebooks(pair.ray)
    assert books == codebooks(pair.local)
    assert {c for c, _, _ in books} == {"float16", "pq64"}
    with (
        FingerprintStore(pair.ray, read_only=True) as a,
        FingerprintStore(pair.local, read_only=True) as b,
    ):
        assert a.verify() == [] and b.verify() == []
        assert_same_lookups(a, b, docs, r.cache_id)
        assert_same_lookups(a, b, sub_chunks(docs), r.cache_id)
        sa, sb = a.stats(), b.stats()
    # The same transactions in the same order: the same sizes, the files' included.
    sizes = ("documents", "words", "payload_bytes", "bytes_on_disk", "staged_words", "trained",
             "codec")  # fmt: skip
    assert [getattr(sa, s) for s in sizes] == [getattr(sb, s) for s in sizes]
    assert sa.documents == N and sa.trained


def test_the_writer_receives_codes_never_float32(pair: Pair, docs: list[str]) -> None:
    """What crosses from the actors to the driver: encoded documents of the store's codebooks,
    no vectors."""
    from semtoken_rag.store import EncodedDocument

    by_digest = {sha: codec for codec, _, sha in codebooks(pair.ray)}
    keys: list[str] = []
    words = {"float32": 0, "float16": 0, "pq64": 0}
    per_batch: list[set[str]] = []
    for batch in pair.received:
        assert set(batch) == {"id", "key", "encoded", "error"}
        kinds: set[str] = set()
        for doc, err in zip(batch["encoded"], batch["error"], strict=True):
            assert isinstance(doc, EncodedDocument) and err == ""
            assert doc.dim == DIM and doc.n_words == sum(b.n_words for b in doc.blocks)
            keys.append(doc.key)
            for block in doc.blocks:
                codec = by_digest[doc.digests[block.codebook]]  # a codebook the store holds
                assert isinstance(block.codes, bytes)
                assert len(block.codes) == block.n_words * CODE_BYTES[codec]
                words[codec] += block.n_words
                kinds.add(codec)
            for arr in (doc.shingles, doc.positions):  # hashes and word numbers, not vectors
                assert arr.dtype == np.int32
        per_batch.append(kinds)
    assert sorted(keys) == sorted(_keys(docs, pair.ray_report.cache_id))  # each one, once
    total = sum(words.values())
    assert total == pair.ray_report.words
    assert words["float32"] == 0  # never float32 with a pq64 store
    # The sample batch (first) is float16: it is what trains the codebook, at its write.
    assert per_batch[0] == {"float16"}
    sample_words = sum(b.n_words for d in pair.received[0]["encoded"] for b in d.blocks)
    assert sample_words >= TRAIN_MIN
    # ... encoded by one Ray task (no actor pool started for one batch), the rest by the pool.
    sample = len(pair.received[0]["encoded"])
    assert pair.ran[0] == ("task", sample)
    assert [kind for kind, _ in pair.ran[1:]] == ["actor"] * (len(pair.received) - 1)
    assert sum(n for _, n in pair.ran) == N
    # Later batches carry pq64 codes made on the actors, float16 only where the guard keeps a
    # block the small test codebook fits badly: how Ray cuts batches varies from run to run (a
    # batch of one such document is all float16), so the check is on the words, not per batch.
    assert any("pq64" in kinds for kinds in per_batch[1:])
    assert words["pq64"] >= (total - sample_words) // 2


def _keys(texts: list[str], cache_id: str) -> list[str]:
    from semtoken_rag.fingerprints import fingerprint_key

    return [fingerprint_key(t, cache_id) for t in texts]


def test_untrained_store_with_too_few_words_stages_float16_then_trains(
    ray_local: Any, docs: list[str], encoder: Any, tmp_path: Path
) -> None:
    """The documented path: an ingestion smaller than ``train_min`` is stored in float16 (no
    FAISS error); the later ingestion that brings the staged words to ``train_min`` trains the
    codec (its sample batch first), in Ray as in one process."""
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.store import FingerprintStore

    spec = small_pq(1024)
    first = docs[:6]  # 720 words: fewer than the 1,024 training needs
    path = new_store(tmp_path / "ray", spec)
    report = ray_ingest(first, path, options=_opts(len(first)))  # one batch: one Ray task
    assert report.encoded == 6 and not report.trained and report.failed == []
    with FingerprintStore(path) as st:
        stats = st.stats()
        assert not stats.trained and stats.codec == "pq64"
        assert stats.staged_words == stats.words == report.words > 0
        assert {c for c, _, _ in codebooks(path)} == {"float16"}
        assert st.verify() == [] and all(fp is not None for fp in st.lookup(first, report.cache_id))

    again = ray_ingest(docs, path, options=_opts())
    assert (again.already_stored, again.encoded) == (6, N - 6)
    assert again.trained
    with FingerprintStore(path) as st:
        stats = st.stats()
        assert stats.trained and stats.documents == N
        assert stats.staged_words < stats.words - 1024  # the staged words were re-encoded
        assert st.verify() == []

    # The same two ingestions in one process: the same codebook, the same vectors.
    local = new_store(tmp_path / "local", spec)
    assert not _local_ingest(encoder, local, first).trained
    assert _local_ingest(encoder, local, docs).trained
    assert codebooks(path) == codebooks(local)
    with FingerprintStore(path, read_only=True) as a, FingerprintStore(local, read_only=True) as b:
        assert_same_lookups(a, b, docs, again.cache_id)
        assert_same_lookups(a, b, sub_chunks(docs), again.cache_id)
        assert a.stats().payload_bytes == b.stats().payload_bytes
