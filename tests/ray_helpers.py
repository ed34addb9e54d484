"""Shared pieces of the Ray tests: a local cluster, real NarrativeQA documents, fault injection,
stores of a chosen codec and lookups compared bit for bit.

The fault-injecting actors are real :class:`FingerprintActor` subclasses (the real MiniLM
encodes every other document).  Ray workers cannot import the ``tests`` package, so this module
is registered with cloudpickle to travel by value.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from semtoken_rag.distributed import FingerprintActor
from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.store.words import SHINGLE_WORDS, WINNOW_WINDOW

#: A document containing this string makes :class:`FailOnMarker` raise.
POISON = "POISON-PILL-DOCUMENT"
#: A chunk of at least this many words is always found in a stored document that holds it
#: (one of its shingles is among the winnowed ones stored); a shorter one may be missed.
GUARANTEED_WORDS = WINNOW_WINDOW + SHINGLE_WORDS - 1
#: Idle worker processes the shared Ray keeps (Ray's default is its CPU count, 2).  Every
#: ``ray_ingest`` first runs a task that loads the encoder in a worker; with the default, that
#: worker is killed while the run's actors and Ray Data's own actors are alive, so the next run
#: imports torch in a new worker again (about 4 s of the 2 cores each time).  Kept, it answers
#: in a fraction of a second.  Nothing a test checks depends on which process runs the task.
IDLE_WORKERS = 8


def shared_local_ray() -> Any:
    """The session's local Ray of 2 CPUs (never a cluster found on the machine), started on
    first use and left running for the next module (each start costs seconds of CPU on this
    2-core machine); ``tests/conftest.py`` stops it (:func:`stop_local_ray`) once no Ray test
    follows, and the next call starts a fresh one."""
    ray = pytest.importorskip("ray")
    import sys

    if not ray.is_initialized():
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _system_config={"num_workers_soft_limit": IDLE_WORKERS})  # fmt: skip
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
    return ray


def stop_local_ray() -> None:
    """Stop this process's Ray, if any."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def narrativeqa_chunks(shared_data: Path, n: int, words: int = 120, stride: int = 120) -> list[str]:
    """``n`` distinct word windows of the NarrativeQA summaries, in file order (each is
    ingested as a short document)."""
    from semtoken_rag.ingestion.chunking import chunk_words

    out: list[str] = []
    seen: set[str] = set()
    with (shared_data / "narrativeqa" / "test.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            ctx = json.loads(line)["context"]
            if ctx in seen:
                continue
            seen.add(ctx)
            out.extend(chunk_words(ctx, words, words - stride))
            if len(out) >= n:
                return out[:n]
    return out


def sub_chunks(texts: Sequence[str], size: int = 37) -> list[str]:
    """Word windows cut from ``texts`` by another splitter than the one that made them (not
    aligned with blocks or documents): what a retriever later asks the store for.  Only
    windows the store guarantees to find are kept (:data:`GUARANTEED_WORDS`)."""
    from semtoken_rag.core.segment import find_words
    from semtoken_rag.ingestion.chunking import chunk_words

    pieces = [piece for t in texts for piece in chunk_words(t, size, 5)]
    return [p for p in pieces if len(find_words(p)) >= GUARANTEED_WORDS]


class FailOnMarker(FingerprintActor):
    """Raises inside the encoder for any batch holding a :data:`POISON` document."""

    def encode(self, texts: list[str]) -> list[ChunkFingerprints]:
        if any(POISON in t for t in texts):
            raise RuntimeError("injected encoder failure")
        return super().encode(texts)


class KillOnce(FingerprintActor):
    """``ray.kill``s its own actor in the middle of its second batch, once per flag file.

    Ray Data restarts the actor and retries the batch; the flag file (named by the subclass
    attribute ``flag``) records that the kill happened.
    """

    flag = ""

    def __init__(self, config: Any, cache_id: str, codecs: Any) -> None:
        super().__init__(config, cache_id, codecs)
        self.calls = 0

    def encode(self, texts: list[str]) -> list[ChunkFingerprints]:
        self.calls += 1
        if self.calls == 2 and self.flag and not Path(self.flag).exists():
            Path(self.flag).write_text(str(os.getpid()), encoding="utf-8")
            import ray

            ray.kill(ray.get_runtime_context().current_actor, no_restart=False)
        return super().encode(texts)


class RecordWhere(FingerprintActor):
    """Appends ``task`` or ``actor`` (what it runs in) and the number of texts of every batch it
    encodes to the file named by the subclass attribute ``log``."""

    log = ""

    def encode(self, texts: list[str]) -> list[ChunkFingerprints]:
        import ray

        kind = "actor" if ray.get_runtime_context().get_actor_id() else "task"
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(f"{kind} {len(texts)}\n")
        return super().encode(texts)


def new_store(path: Path, codec: Any = "float32") -> Path:
    """Create an empty store of ``codec`` at ``path`` and return the path.

    A store reopened without a codec keeps its own (options such as ``train_min`` included), so
    every later open (a path given to ``ray_ingest``, the CLI, a child process) uses it too.
    ``float32`` keeps vectors exactly, for bit-for-bit comparisons with an encoder's output.
    """
    from semtoken_rag.store import FingerprintStore

    FingerprintStore(path, codec=codec).close()
    return path


def exact_store(path: Path) -> Path:
    """:func:`new_store` of the exact ``float32`` codec."""
    return new_store(path, "float32")


def small_pq(train_min: int) -> Any:
    """``pq64`` trained from ``train_min`` words (the registry's 16,384 is too many for a test;
    256, one point per centroid, is FAISS's minimum)."""
    from semtoken_rag.store import get_codec

    return get_codec("pq64").with_options(train_min=train_min)


def assert_same_lookups(a: Any, b: Any, texts: Sequence[str], cache_id: str) -> None:
    """Both stores serve every text, with bit-identical float32 vectors and word spans."""
    import numpy as np

    fa, fb = a.lookup(list(texts), cache_id), b.lookup(list(texts), cache_id)
    assert all(fp is not None for fp in fa), "missing in the first store"
    assert all(fp is not None for fp in fb), "missing in the second store"
    for x, y in zip(fa, fb, strict=True):
        assert np.array_equal(x.word_spans, y.word_spans)
        assert x.vectors.dtype == y.vectors.dtype == np.float32
        assert np.array_equal(x.vectors, y.vectors)


def stored_names(path: Path) -> dict[str, set[str]]:
    """Document key -> the names recorded for it (read from the database file directly)."""
    from semtoken_rag.store.recovery import DB_NAME

    out: dict[str, set[str]] = {}
    with contextlib.closing(sqlite3.connect(f"file:{path / DB_NAME}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT d.key, n.name FROM names n JOIN documents d ON d.id = n.document"
        ).fetchall()
    for key, name in rows:
        out.setdefault(str(key), set()).add(str(name))
    return out


def codebooks(path: Path) -> set[tuple[str, int, bytes]]:
    """``(codec, dim, sha256)`` of every codebook of the store at ``path`` (read directly)."""
    from semtoken_rag.store.recovery import DB_NAME

    with contextlib.closing(sqlite3.connect(f"file:{path / DB_NAME}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT codec, dim, sha256 FROM codebooks").fetchall()
    return {(str(c), int(d), bytes(s)) for c, d, s in rows}


class OtherWindows(FingerprintActor):
    """Resolves the encoder with other windows (another ``cache_id``), as a worker whose
    settings or weights differ from the driver's would."""

    def __init__(self, config: Any, cache_id: str, codecs: Any) -> None:
        super().__init__(_other_windows(config), cache_id, codecs)


def _other_windows(config: Any) -> Any:
    from semtoken_rag import SemTokenConfig

    return SemTokenConfig(encoder_model=config.encoder_model, window_tokens=96)


class OtherDimension(FingerprintActor):
    """Holds codebooks of another dimension than its encoder's (128 instead of 384)."""

    def __init__(self, config: Any, cache_id: str, codecs: Any) -> None:
        from semtoken_rag.store import FingerprintStore

        with FingerprintStore(codec="float32") as other:
            codecs = other.codec_set(128)
        super().__init__(config, cache_id, codecs)


class ForeignCodebook(FingerprintActor):
    """Encodes with the codebooks of another store (the subclass attribute ``foreign``)
    instead of the run's."""

    foreign: Any = None

    def __init__(self, config: Any, cache_id: str, codecs: Any) -> None:
        super().__init__(config, cache_id, self.foreign)
