"""Distributed ingestion on a real local Ray (2 CPUs) with the real MiniLM and the real store.

Checked: the distributed store serves bit-identical fingerprints to a single-process ingestion
(``Compressor.ingest``), for the documents and for chunks cut from them; a re-run encodes
nothing; an actor killed mid-run (``ray.kill``) costs nothing; a document whose encoding fails
is reported by its name and the run goes on (``skip``) or stops with everything before it
committed and a store that verifies clean (``raise``), and a re-run completes it; a Ray Dataset
input with an id column (recorded as each document's name, also for stored rows); GPU actors on
a CPU cluster fail fast; the CLI.

The stores are float32 (exact); ``test_ray_codecs.py`` covers trained codecs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import fingerprint_key
from tests.ray_helpers import (
    POISON,
    FailOnMarker,
    KillOnce,
    assert_same_lookups,
    exact_store,
    narrativeqa_chunks,
    stored_names,
    sub_chunks,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

N = 12
BATCH = 4


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> list[str]:
    """Twelve 120-word windows of NarrativeQA summaries, each ingested as a document."""
    return narrativeqa_chunks(shared_data, N)


@dataclass
class Reference:
    store: Any
    cache_id: str
    encoder: Any


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, docs: list[str]) -> Iterator[Reference]:
    """The reference: single-process ingestion (``Compressor.ingest``) of the same documents."""
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.ingestion import IngestOptions
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path_factory.mktemp("single"))
    with FingerprintStore(path) as store:
        comp = Compressor(SemTokenConfig(), store=store)
        report = comp.ingest(docs, IngestOptions(batch_size=BATCH, progress=False))
        assert report.encoded == N
    with FingerprintStore(path, read_only=True) as store:
        yield Reference(store, report.cache_id, comp.encoder)


def _opts(**kwargs: Any) -> Any:
    from semtoken_rag.ingestion import IngestOptions

    return IngestOptions(**{"batch_size": BATCH, "progress": False, **kwargs})


def _named(texts: list[str]) -> list[Any]:
    from semtoken_rag.ingestion import SourceDocument

    return [SourceDocument(t, (f"doc#{i}",)) for i, t in enumerate(texts)]


def test_distributed_equals_single_process_and_rerun_skips(
    ray_local: Any, docs: list[str], single: Reference, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import RayOptions, ray_ingest
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "dist")
    commits: list[int] = []
    report = ray_ingest(
        docs, path, ray=RayOptions(actors=2),
        options=_opts(on_commit=lambda r: commits.append(r.encoded)),
    )  # fmt: skip
    assert report.cache_id == single.cache_id  # the keys a compressor looks up
    assert (report.documents, report.already_stored, report.encoded) == (N, 0, N)
    assert report.failed == [] and report.workers == 2 and report.pending == 0
    assert report.batches == N // BATCH == len(commits)
    assert commits == sorted(commits) and commits[-1] == N
    assert report.words == sum(fp.n_words for fp in single.store.lookup(docs, single.cache_id))
    with FingerprintStore(path) as dist:
        assert dist.verify() == []
        assert len(dist) == N
        assert_same_lookups(dist, single.store, docs, single.cache_id)
        assert_same_lookups(dist, single.store, sub_chunks(docs), single.cache_id)
        # Exact codec: the served vectors are the encoder's own, with the same sizes.
        for fp, ref in zip(dist.lookup(docs, single.cache_id),
                           single.encoder.encode_texts(docs), strict=True):  # fmt: skip
            assert np.array_equal(fp.vectors, ref.vectors)
        sizes = ("documents", "words", "payload_bytes", "codec")
        sa, sb = dist.stats(), single.store.stats()
        assert [getattr(sa, s) for s in sizes] == [getattr(sb, s) for s in sizes]

    again = ray_ingest(docs, path, ray=RayOptions(actors=2), options=_opts())
    assert (again.already_stored, again.encoded, again.batches, again.workers) == (N, 0, 0, 0)


def test_actor_killed_mid_run_loses_nothing(
    ray_local: Any, docs: list[str], single: Reference, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "st")
    flag = tmp_path / "killed"
    killer = type("KillOnceHere", (KillOnce,), {"flag": str(flag)})
    report = ray_ingest(docs, path, options=_opts(), actor_class=killer)
    assert flag.is_file(), "the actor was never killed"
    assert report.encoded == N and report.failed == []
    with FingerprintStore(path) as st:
        assert st.verify() == [] and len(st) == N
        assert_same_lookups(st, single.store, docs, single.cache_id)
    assert ray_ingest(docs, path, options=_opts()).encoded == 0


def test_failing_document_skipped_and_reported(
    ray_local: Any, docs: list[str], single: Reference, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import RayOptions, ray_ingest
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "st")
    texts = [*docs[:6], f"{POISON} a document the encoder rejects", *docs[6:]]
    # One batch, so one Ray task (the pool's failures: test_ray_dataset_input_with_id_column).
    report = ray_ingest(
        _named(texts), path, ray=RayOptions(actors=2),
        options=_opts(on_error="skip", batch_size=len(texts)), actor_class=FailOnMarker,
    )  # fmt: skip
    assert [f.id for f in report.failed] == ["doc#6"]
    assert report.failed[0].key == fingerprint_key(texts[6], single.cache_id)
    assert "RuntimeError: injected encoder failure" in report.failed[0].error
    assert report.encoded == N and report.pending == 0
    assert report.workers == 1  # one task ran, not the pool of 2 actors asked for
    with FingerprintStore(path) as st:
        assert st.verify() == [] and len(st) == N
        assert st.contains([report.failed[0].key]) == set()
        assert_same_lookups(st, single.store, docs, single.cache_id)
    names = stored_names(path)
    assert names[fingerprint_key(texts[0], single.cache_id)] == {"doc#0"}
    assert names[fingerprint_key(texts[7], single.cache_id)] == {"doc#7"}


def test_failing_document_raise_stops_cleanly_and_rerun_completes(
    ray_local: Any, docs: list[str], single: Reference, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.ingestion import DocumentEncodingError
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "st")
    poison = f"{POISON} a document the encoder rejects"
    texts = [*docs[:2], poison, *docs[2:]]
    with pytest.raises(DocumentEncodingError, match=r"doc#2.*injected encoder failure") as info:
        ray_ingest(_named(texts), path, options=_opts(), actor_class=FailOnMarker)
    stopped = info.value.report
    assert [f.id for f in info.value.failed] == ["doc#2"]
    assert (stopped.encoded, stopped.batches) == (3, 1)  # the rest of the failing batch only
    with FingerprintStore(path) as st:
        assert st.verify() == []
        assert len(st) == stopped.encoded  # exactly the committed batch, nothing half-written
        keys = [fingerprint_key(t, single.cache_id) for t in texts]
        assert st.contains(keys) == {keys[0], keys[1], keys[3]}
    # Re-run with a healthy encoder: the rest (and the document that failed) complete (one
    # batch: one Ray task, not a second actor pool).
    done = ray_ingest(_named(texts), path, options=_opts(batch_size=len(texts)))
    assert done.already_stored == stopped.encoded
    assert done.encoded == N + 1 - stopped.encoded and done.failed == []
    with FingerprintStore(path) as st:
        assert st.verify() == [] and len(st) == N + 1
        assert_same_lookups(st, single.store, docs, single.cache_id)
        assert st.lookup([poison], single.cache_id)[0] is not None


def test_ray_dataset_input_with_id_column(
    ray_local: Any, docs: list[str], single: Reference, tmp_path: Path
) -> None:
    """A Dataset a user already has: stored documents are skipped by the key pass (their id
    recorded as a name), new ones encoded and named by their id; as with a list, a repeated
    document is counted once (every copy's id recorded) and a blank row is counted as blank."""
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.store import FingerprintStore

    shutil.copytree(single.store.path, tmp_path / "st")  # a store holding every document
    new = "A brand new document about a lighthouse keeper and the storm that took his boat."
    rows = [{"body": t, "name": f"row-{i}"} for i, t in enumerate(docs)]
    rows += [{"body": new, "name": "new"}, {"body": f"{POISON} rejected", "name": "bad"},
             {"body": new, "name": "new-again"}, {"body": docs[3], "name": "row-3-again"},
             {"body": " \n ", "name": "blank"}]  # fmt: skip
    ds = ray_local.data.from_items(rows)
    report = ray_ingest(
        ds, tmp_path / "st", text_column="body", id_column="name",
        options=_opts(on_error="skip"), actor_class=FailOnMarker,
    )  # fmt: skip
    assert (report.documents, report.already_stored, report.encoded) == (N + 2, N, 1)
    assert [f.id for f in report.failed] == ["bad"] and (report.blank, report.pending) == (1, 0)
    with FingerprintStore(tmp_path / "st") as st:
        assert st.verify() == [] and len(st) == N + 1
        assert_same_lookups(st, single.store, docs, single.cache_id)
        assert st.lookup([new], single.cache_id)[0] is not None
    names = stored_names(tmp_path / "st")
    assert names[fingerprint_key(new, single.cache_id)] == {"new", "new-again"}
    assert names[fingerprint_key(docs[3], single.cache_id)] == {"row-3", "row-3-again"}
    with pytest.raises(InvalidInputError, match="no 'text' column"):
        ray_ingest(ds, tmp_path / "st")


@pytest.mark.parametrize("batch_size", [2, 3], ids=["actor-pool", "one-batch-task"])
def test_names_and_texts_ray_could_not_carry(
    ray_local: Any, docs: list[str], single: Reference, tmp_path: Path, batch_size: int
) -> None:
    """A lone surrogate (a file name that is not UTF-8, a broken PDF's text) failed the whole
    run on the driver (pandas' Arrow strings refuse it), and a name holding ``\\x1f`` was split
    in two; both are stored as the local path stores them, through the actor pool (two
    batches) and through the one task of a single batch."""
    from semtoken_rag.distributed import RayOptions, ray_ingest
    from semtoken_rag.ingestion import SourceDocument
    from semtoken_rag.store import FingerprintStore

    broken = "Broken extraction \ud800 of a page about the tides and the moon over the bay."
    listed = [
        SourceDocument(docs[0], ("/data/caf\udce9.txt",)),
        SourceDocument(docs[1], ("left\x1fright",)),
        SourceDocument(broken, ("pdf",)),
    ]
    path = exact_store(tmp_path / "st")
    report = ray_ingest(
        listed, path, ray=RayOptions(actors=1), options=_opts(batch_size=batch_size)
    )
    assert (report.encoded, report.failed, report.batches) == (3, [], 4 - batch_size)
    names = stored_names(path)
    assert names[fingerprint_key(docs[0], single.cache_id)] == {"/data/caf\ufffd.txt"}
    assert names[fingerprint_key(docs[1], single.cache_id)] == {"left\x1fright"}
    with FingerprintStore(path) as st:
        assert st.verify() == [] and st.lookup([broken], single.cache_id)[0] is not None


def test_dataset_rows_repeating_a_training_sample_document_keep_their_ids(
    ray_local: Any, docs: list[str], single: Reference, tmp_path: Path
) -> None:
    """Into an untrained store the run first takes a training sample; the other rows of a
    sampled document were dropped by key with their ids (docs/ray.md: every row's id)."""
    from semtoken_rag.distributed import ray_ingest
    from tests.ray_helpers import new_store, small_pq

    order = [(0, "a-first"), (1, "b"), (2, "c"), (3, "d"), (0, "a-again"), (3, "d-again")]
    ds = ray_local.data.from_items([{"text": docs[i], "id": n} for i, n in order])
    path = new_store(tmp_path / "st", small_pq(256))  # the sample: the first three documents
    report = ray_ingest(ds, path, id_column="id", options=_opts())
    assert (report.documents, report.encoded, report.trained) == (4, 4, True)
    names = stored_names(path)
    assert names[fingerprint_key(docs[0], single.cache_id)] == {"a-first", "a-again"}
    assert names[fingerprint_key(docs[3], single.cache_id)] == {"d", "d-again"}


def test_gpu_actors_on_a_cpu_cluster_fail_fast(
    ray_local: Any, docs: list[str], tmp_path: Path
) -> None:
    from semtoken_rag.distributed import RayOptions, ray_ingest

    with pytest.raises(InvalidInputError, match="cannot hold one actor"):
        ray_ingest(docs, tmp_path / "st", ray=RayOptions(gpus_per_actor=1))
    assert not (tmp_path / "st").exists()


def test_cli_ingest_on_ray(
    ray_local: Any, docs: list[str], single: Reference, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from semtoken_rag.cli.main import main
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "st")
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs[:6]), encoding="utf-8")
    argv = ["ingest", str(src), "--store", str(path), "--no-progress"]
    assert main([*argv, "--ray", "--actors", "2", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "ray: 2 actors, 2 batches" in out
    assert "1 files, 6 documents" in out and "6 encoded, 0 already stored" in out
    with FingerprintStore(path) as st:
        assert_same_lookups(st, single.store, docs[:6], single.cache_id)
    assert stored_names(path)[fingerprint_key(docs[0], single.cache_id)] == {f"{src}:1"}
    assert main([*argv, "--ray"]) == 0
    assert "0 encoded, 6 already stored" in capsys.readouterr().out
