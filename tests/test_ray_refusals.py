"""What a Ray ingestion refuses rather than store wrong codes (issue 25), on a real local Ray of
2 CPUs with the real MiniLM and real ``pq64`` stores:

* **The store's codebook changed under a running ingestion** (the store directory replaced by
  one trained on other documents, and the writer handed it between two batches): the run
  stops with :class:`CodebookChangedError`; nothing encoded with the old codebook is written
  to, or served from, the new store; a restart completes against the new codebook.
* **An actor with another encoder or codebook** (other windows, so another ``cache_id``;
  codebooks of another dimension; another store's codebook of the same dimension): refused with
  a typed error (:class:`EncoderMismatchError`, or the writer's :class:`CodebookChangedError`)
  before anything is written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ray_helpers import (
    ForeignCodebook,
    OtherDimension,
    OtherWindows,
    assert_same_lookups,
    codebooks,
    narrativeqa_chunks,
    new_store,
    small_pq,
    sub_chunks,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

N = 9
BATCH = 3
#: Small enough for four 120-word documents to train a store's pq64 codebook.
TRAIN_MIN = 256


@dataclass
class Prepared:
    """Two pq64 stores trained in this process on different documents (A: the run's store,
    B: another one), and the documents a run ingests (in neither)."""

    a: Path
    b: Path
    a_docs: list[str]
    b_docs: list[str]
    docs: list[str]
    cache_id: str


@pytest.fixture(scope="module")
def prepared(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.ingestion import IngestOptions
    from semtoken_rag.store import FingerprintStore

    texts = narrativeqa_chunks(shared_data, N + 8)
    docs, a_docs, b_docs = texts[:N], texts[N : N + 4], texts[N + 4 :]
    root = tmp_path_factory.mktemp("prepared")
    comp = Compressor(SemTokenConfig())
    for name, part in (("a", a_docs), ("b", b_docs)):
        with FingerprintStore(new_store(root / name, small_pq(TRAIN_MIN))) as store:
            comp.store = store
            assert comp.ingest(part, IngestOptions(progress=False)).trained
    comp.store = None
    assert {c for c, _, _ in codebooks(root / "a")} == {"float16", "pq64"}
    assert codebooks(root / "a") != codebooks(root / "b")  # same codec, other codebooks
    return Prepared(root / "a", root / "b", a_docs, b_docs, docs, comp.encoder.cache_id)


def _opts(**kwargs: Any) -> Any:
    from semtoken_rag.ingestion import IngestOptions

    return IngestOptions(**{"batch_size": BATCH, "progress": False, **kwargs})


def _snapshot(path: Path) -> tuple[int, int, int]:
    from semtoken_rag.store import FingerprintStore

    with FingerprintStore(path, read_only=True) as st:
        s = st.stats()
        return s.documents, s.words, s.payload_bytes


class Swappable:
    """The store an ingestion writes to, which the test replaces between two batches (what a
    writer that reopens a replaced store directory does)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_codebook_changed_under_a_running_ingestion(
    ray_local: Any, prepared: Prepared, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.store import CodebookChangedError, FingerprintStore

    path = tmp_path / "st"
    shutil.copytree(prepared.a, path)
    store = Swappable(FingerprintStore(path))
    committed: list[int] = []

    def replace_the_store(report: Any) -> None:
        """After the first batch: the directory now holds store B (its own pq64 codebook)."""
        committed.append(report.encoded)
        if report.batches == 1:
            store.store.close()
            shutil.rmtree(path)
            shutil.copytree(prepared.b, path)
            store.store = FingerprintStore(path)

    try:
        with pytest.raises(CodebookChangedError, match="restart the ingestion"):
            ray_ingest(prepared.docs, store, options=_opts(on_commit=replace_the_store))
    finally:
        store.store.close()
    assert committed == [BATCH]  # one batch written (to A), then the refusal
    # The new store holds exactly what it held: nothing encoded with A's codebook is in it,
    # so nothing is ever decoded with B's; its own documents are served as before.
    assert codebooks(path) == codebooks(prepared.b)
    assert _snapshot(path) == _snapshot(prepared.b)
    with FingerprintStore(path) as st, FingerprintStore(prepared.b, read_only=True) as b:
        assert st.verify() == []
        assert st.lookup(prepared.docs, prepared.cache_id) == [None] * N
        assert_same_lookups(st, b, prepared.b_docs, prepared.cache_id)
    # Restarting, as the error says: the run completes with the new store's codebook (in one
    # batch: one Ray task instead of a second actor pool).
    report = ray_ingest(prepared.docs, path, options=_opts(batch_size=N))
    assert (report.already_stored, report.encoded, report.failed) == (0, N, [])
    with FingerprintStore(path) as st:
        assert st.verify() == [] and len(st) == N + len(prepared.b_docs)
        assert codebooks(path) == codebooks(prepared.b)
        assert all(fp is not None for fp in st.lookup(sub_chunks(prepared.docs),
                                                       prepared.cache_id))  # fmt: skip


def _foreign(prepared: Prepared, tmp_path: Path) -> type:
    """An actor class encoding with store B's codebooks (same codec and dimension)."""
    from semtoken_rag.store import FingerprintStore

    shutil.copytree(prepared.b, tmp_path / "b")
    with FingerprintStore(tmp_path / "b") as b:
        codecs = b.codec_set(384)
    assert codecs.guard  # B's trained pq64 codebook
    return type("ForeignB", (ForeignCodebook,), {"foreign": codecs})


@pytest.mark.parametrize(
    ("actor", "error", "match"),
    [
        (OtherWindows, "EncoderMismatchError", r"resolves the encoder to .*win96"),
        ("foreign", "CodebookChangedError", "encoded with codebook"),
    ],
    ids=["other-encoder-identity", "other-codebook"],
)
@pytest.mark.parametrize("batch_size", [BATCH, N], ids=["actor-pool", "one-batch-task"])
def test_an_actor_with_another_encoder_or_codebook_is_refused_before_writing(
    ray_local: Any, prepared: Prepared, tmp_path: Path, actor: Any, error: str, match: str,
    batch_size: int,
) -> None:  # fmt: skip
    """Through the actor pool (three batches) and through the one Ray task of a single batch."""
    from semtoken_rag.distributed import EncoderMismatchError, ray_ingest
    from semtoken_rag.store import CodebookChangedError, FingerprintStore

    errors = {"EncoderMismatchError": EncoderMismatchError,
              "CodebookChangedError": CodebookChangedError}  # fmt: skip
    actor_class = _foreign(prepared, tmp_path) if actor == "foreign" else actor
    path = tmp_path / "st"
    shutil.copytree(prepared.a, path)
    with pytest.raises(errors[error], match=match):
        ray_ingest(prepared.docs, path, options=_opts(batch_size=batch_size),
                   actor_class=actor_class)  # fmt: skip
    assert _snapshot(path) == _snapshot(prepared.a)  # nothing written
    assert codebooks(path) == codebooks(prepared.a)
    with FingerprintStore(path) as st:
        assert st.verify() == []
        assert st.lookup(prepared.docs, prepared.cache_id) == [None] * N


def test_an_actor_whose_codebooks_have_another_dimension_refuses_to_start(
    prepared: Prepared,
) -> None:
    """The constructor's own check, in this process: an actor's failure to start reaches the
    driver as the typed error the same way for every cause (the Ray path is the
    other-encoder-identity case above)."""
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.distributed import EncoderMismatchError

    with pytest.raises(EncoderMismatchError, match=r"\(dim 384\) but the run uses .*\(dim 128\)"):
        OtherDimension(SemTokenConfig(), prepared.cache_id, None)
