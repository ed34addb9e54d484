"""A distributed ingestion whose driver is SIGKILLed mid-run: the store keeps exactly the
committed batches, opens, verifies clean, and a re-run completes the rest with nothing lost.

The driver runs in a child process (its own local Ray, its own process group) and kills itself
right after its second committed batch; the group is killed afterwards so no Ray process of it
survives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ray_helpers import (
    assert_same_fingerprints,
    exact_store,
    narrativeqa_chunks,
    start_local_ray,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

N = 12
BATCH = 4

DRIVER = """
import json, os, signal, sys
import ray
from semtoken_rag.distributed import ray_ingest

texts = json.loads(open(sys.argv[1], encoding="utf-8").read())

def die_after_two(report):
    if report.batches == 2:
        os.kill(os.getpid(), signal.SIGKILL)

ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
ray_ingest(texts, sys.argv[2], batch_size=int(sys.argv[3]), on_commit=die_after_two)
print("not killed")
"""


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    yield from start_local_ray()


def _run_killed_driver(texts: list[str], store: Path, tmp_path: Path) -> int:
    src = tmp_path / "chunks.json"
    src.write_text(json.dumps(texts), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(src), str(store), str(BATCH)],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the child's Ray processes
    assert "not killed" not in out
    return proc.returncode


def test_driver_killed_mid_run_then_rerun_completes(
    ray_local: Any, shared_data: Path, tmp_path: Path
) -> None:
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.encoder import TransformerEncoder
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import FingerprintStore

    texts = narrativeqa_chunks(shared_data, N)
    store = exact_store(tmp_path / "st")
    assert _run_killed_driver(texts, store, tmp_path) == -signal.SIGKILL
    with FingerprintStore(store) as st:
        assert st.verify() == []
        assert len(st) == 2 * BATCH  # the two committed batches, no part of a third

    report = ray_ingest(texts, store, batch_size=BATCH)
    assert (report.already_stored, report.encoded, report.failed) == (2 * BATCH, N - 2 * BATCH, [])

    enc = TransformerEncoder.from_config(SemTokenConfig())
    with FingerprintStore(exact_store(tmp_path / "ref")) as ref, FingerprintStore(store) as st:
        ref.add_texts(texts, enc, progress=False)
        assert st.verify() == [] and len(st) == N
        assert_same_fingerprints(st, ref, [fingerprint_key(t, enc.cache_id) for t in texts])
