"""Shared pieces of the Ray tests: a local cluster, real NarrativeQA chunks, fault injection.

The fault-injecting actors are real :class:`FingerprintActor` subclasses (the real MiniLM
encodes every other chunk).  Ray workers cannot import the ``tests`` package, so this module is
registered with cloudpickle to travel by value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semtoken_rag.distributed import FingerprintActor
from semtoken_rag.fingerprints import ChunkFingerprints

#: A chunk containing this string makes :class:`FailOnMarker` raise.
POISON = "POISON-PILL-CHUNK"


def start_local_ray() -> Iterator[Any]:
    """A fresh local Ray of 2 CPUs for one test module (never a cluster found on the machine)."""
    ray = pytest.importorskip("ray")
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    try:
        yield ray
    finally:
        ray.shutdown()


def narrativeqa_chunks(shared_data: Path, n: int, words: int = 120, stride: int = 120) -> list[str]:
    """``n`` distinct word windows of the NarrativeQA summaries, in file order."""
    from semtoken_rag.store import chunk_words

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


class FailOnMarker(FingerprintActor):
    """Raises inside the encoder for any batch holding a :data:`POISON` chunk."""

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

    def __init__(self, config: Any, cache_id: str | None = None) -> None:
        super().__init__(config, cache_id)
        self.calls = 0

    def encode(self, texts: list[str]) -> list[ChunkFingerprints]:
        self.calls += 1
        if self.calls == 2 and self.flag and not Path(self.flag).exists():
            Path(self.flag).write_text(str(os.getpid()), encoding="utf-8")
            import ray

            ray.kill(ray.get_runtime_context().current_actor, no_restart=False)
        return super().encode(texts)


def exact_store(path: Path) -> Path:
    """Create an empty store at ``path`` that keeps vectors exactly (float32), and return it.

    Why: the comparisons below are bit-for-bit; a lossy codec trains its codebook on the
    entries present when it trains, which depend on the order batches were committed in.  A
    store reopened without a codec keeps its own, so every later open (a path given to
    ``ray_ingest``, the CLI, a child process) uses float32 too.  Stores without codecs (older
    versions) are exact already.
    """
    import inspect

    from semtoken_rag.store import FingerprintStore

    exact = (
        {"codec": "float32"} if "codec" in inspect.signature(FingerprintStore).parameters else {}
    )
    FingerprintStore(path, **exact).close()
    return path


def assert_same_fingerprints(a: Any, b: Any, keys: list[str]) -> None:
    """Both stores hold every key with bit-identical vectors and word offsets."""
    import numpy as np

    fa, fb = a.get_many(keys), b.get_many(keys)
    assert all(fp is not None for fp in fa), "missing in the first store"
    assert all(fp is not None for fp in fb), "missing in the second store"
    for x, y in zip(fa, fb, strict=True):
        assert np.array_equal(x.word_spans, y.word_spans)
        assert x.vectors.dtype == y.vectors.dtype == np.float32
        assert np.array_equal(x.vectors, y.vectors)
