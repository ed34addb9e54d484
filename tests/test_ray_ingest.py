"""Distributed ingestion on a real local Ray (2 CPUs) with the real MiniLM and the real store.

Checked: distributed fingerprints are bit-identical to single-process ingestion; a re-run
encodes nothing; an actor killed mid-run (``ray.kill``) costs nothing; a chunk whose encoding
fails is reported by id and the run goes on (``skip``) or stops with everything before it
committed and a store that verifies clean (``raise``); a Ray Dataset input; the CLI.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import fingerprint_key
from tests.ray_helpers import (
    POISON,
    FailOnMarker,
    KillOnce,
    assert_same_fingerprints,
    exact_store,
    narrativeqa_chunks,
    start_local_ray,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

N = 12
BATCH = 4


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    yield from start_local_ray()


@pytest.fixture(scope="module")
def chunks(shared_data: Path) -> list[str]:
    return narrativeqa_chunks(shared_data, N)


@dataclass
class Reference:
    store: Any
    cache_id: str

    def get_many(self, keys: list[str]) -> list[Any]:
        return self.store.get_many(keys)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, chunks: list[str]) -> Iterator[Reference]:
    """The reference: plain single-process ingestion of the same chunks."""
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.encoder import TransformerEncoder
    from semtoken_rag.store import FingerprintStore

    enc = TransformerEncoder.from_config(SemTokenConfig())
    path = exact_store(tmp_path_factory.mktemp("single"))
    with FingerprintStore(path) as store:
        assert store.add_texts(chunks, enc, batch_size=64, progress=False) == N
    with FingerprintStore(path) as store:
        yield Reference(store, enc.cache_id)


def _keys(texts: list[str], cache_id: str) -> list[str]:
    return [fingerprint_key(t, cache_id) for t in texts]


def test_distributed_equals_single_process_and_rerun_skips(
    ray_local: Any, chunks: list[str], single: Any, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "dist")
    commits: list[int] = []
    report = ray_ingest(
        chunks,
        path,
        actors=2,
        batch_size=BATCH,
        on_commit=lambda r: commits.append(r.encoded),
    )
    assert report.cache_id == single.cache_id  # the keys a compressor looks up
    assert (report.chunks, report.already_stored, report.encoded) == (N, 0, N)
    assert report.failed == [] and report.actors == 2
    assert report.batches == N // BATCH == len(commits)
    assert commits == sorted(commits) and commits[-1] == N
    with FingerprintStore(path) as dist:
        assert dist.verify() == []
        assert len(dist) == N
        assert_same_fingerprints(dist, single, _keys(chunks, report.cache_id))

    again = ray_ingest(chunks, path, actors=2, batch_size=BATCH)
    assert (again.already_stored, again.encoded, again.batches) == (N, 0, 0)


def test_actor_killed_mid_run_loses_nothing(
    ray_local: Any, chunks: list[str], single: Any, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "st")
    flag = tmp_path / "killed"
    killer = type("KillOnceHere", (KillOnce,), {"flag": str(flag)})
    report = ray_ingest(chunks, path, actors=1, batch_size=BATCH, actor_class=killer)
    assert flag.is_file(), "the actor was never killed"
    assert report.encoded == N and report.failed == []
    with FingerprintStore(path) as st:
        assert st.verify() == []
        assert_same_fingerprints(st, single, _keys(chunks, report.cache_id))
    assert ray_ingest(chunks, path, batch_size=BATCH).encoded == 0


def test_failing_chunk_skipped_and_reported(
    ray_local: Any, chunks: list[str], single: Any, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "st")
    texts = [*chunks[:6], f"{POISON} a chunk the encoder rejects", *chunks[6:]]
    ids = [f"doc#{i}" for i in range(len(texts))]
    report = ray_ingest(
        texts, path, ids=ids, batch_size=BATCH, on_error="skip", actor_class=FailOnMarker
    )
    assert [f.id for f in report.failed] == ["doc#6"]
    assert "RuntimeError: injected encoder failure" in report.failed[0].error
    assert report.encoded == N and report.pending == 0
    with FingerprintStore(path) as st:
        assert st.verify() == [] and len(st) == N
        assert report.failed[0].key not in st.contains_many([report.failed[0].key])
        assert_same_fingerprints(st, single, _keys(chunks, report.cache_id))


def test_failing_chunk_raise_stops_cleanly_and_rerun_completes(
    ray_local: Any, chunks: list[str], single: Any, tmp_path: Path
) -> None:
    from semtoken_rag.distributed import ChunkEncodingError, ray_ingest
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "st")
    poison = f"{POISON} a chunk the encoder rejects"
    texts = [*chunks[:2], poison, *chunks[2:]]
    ids = [f"doc#{i}" for i in range(len(texts))]
    with pytest.raises(ChunkEncodingError, match=r"doc#2.*injected encoder failure") as info:
        ray_ingest(texts, path, ids=ids, batch_size=BATCH, actor_class=FailOnMarker)
    stopped = info.value.report
    assert [f.id for f in info.value.failed] == ["doc#2"]
    with FingerprintStore(path) as st:
        assert st.verify() == []
        assert len(st) == stopped.encoded  # exactly the committed batches, nothing half-written
    # Re-run with a healthy encoder: the rest (and the chunk that failed) complete.
    done = ray_ingest(texts, path, ids=ids, batch_size=BATCH)
    assert done.already_stored == stopped.encoded
    assert done.encoded == N + 1 - stopped.encoded
    with FingerprintStore(path) as st:
        assert st.verify() == [] and len(st) == N + 1
        assert_same_fingerprints(st, single, _keys(chunks, done.cache_id))


def test_ray_dataset_input_with_id_column(
    ray_local: Any, chunks: list[str], single: Any, tmp_path: Path
) -> None:
    """A Dataset a user already has: stored chunks are skipped by the key pre-pass."""
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.store import FingerprintStore

    shutil.copytree(single.store.path, tmp_path / "st")  # a store holding every chunk already
    rows = [{"body": t, "name": f"row-{i}"} for i, t in enumerate(chunks)]
    rows.append({"body": "A brand new chunk about a lighthouse keeper.", "name": "new"})
    rows.append({"body": f"{POISON} rejected", "name": "bad"})
    ds = ray_local.data.from_items(rows)
    report = ray_ingest(
        ds,
        tmp_path / "st",
        text_column="body",
        id_column="name",
        batch_size=BATCH,
        on_error="skip",
        actor_class=FailOnMarker,
    )
    assert (report.chunks, report.already_stored, report.encoded) == (N + 2, N, 1)
    assert [f.id for f in report.failed] == ["bad"]
    with FingerprintStore(tmp_path / "st") as st:
        assert st.verify() == [] and len(st) == N + 1
    with pytest.raises(InvalidInputError, match="no 'text' column"):
        ray_ingest(ds, tmp_path / "st")


def test_gpu_actors_on_a_cpu_cluster_fail_fast(
    ray_local: Any, chunks: list[str], tmp_path: Path
) -> None:
    from semtoken_rag.distributed import ray_ingest

    with pytest.raises(InvalidInputError, match="cannot hold one actor"):
        ray_ingest(chunks, tmp_path / "st", gpus_per_actor=1)


def test_cli_ingest_on_ray(
    ray_local: Any, chunks: list[str], single: Any, tmp_path: Path, capsys: Any
) -> None:
    from semtoken_rag.cli.main import main
    from semtoken_rag.store import FingerprintStore

    path = exact_store(tmp_path / "st")
    src = tmp_path / "chunks.jsonl"
    import json

    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in chunks[:6]), encoding="utf-8")
    argv = ["ingest", str(src), "--store", str(path), "--no-progress"]
    assert main([*argv, "--ray", "--actors", "2", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "ray: 2 actors, 2 batches" in out
    assert "6 chunks: 6 encoded, 0 already stored" in out
    with FingerprintStore(path) as st:
        assert_same_fingerprints(st, single, _keys(chunks[:6], single.cache_id))
    assert main([*argv, "--ray"]) == 0
    assert "6 chunks: 0 encoded, 6 already stored" in capsys.readouterr().out
