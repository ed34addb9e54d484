"""A distributed ingestion whose driver is SIGKILLed mid-run loses nothing: the store keeps
exactly the committed batches (the sample that trained its ``pq64`` codebook, then one batch of
codes), opens, verifies clean, and a re-run completes the rest; the result serves the same
vectors, from the same codebook, as a single-process ingestion that was never interrupted.

The driver runs in a child process (its own process group) connected to the session's local Ray
(its job's workers and actors are its own: Ray ends them when the driver dies) and kills itself
right after its second committed batch; the group is killed afterwards so nothing of it
survives the test.  The re-run is this process's, on the same Ray.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ray_helpers import (
    assert_same_lookups,
    codebooks,
    narrativeqa_chunks,
    new_store,
    small_pq,
    sub_chunks,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

N = 12
BATCH = 4
#: Words that train the codec: the first five 120-word documents are the sample batch.
TRAIN_MIN = 512
SAMPLE = 5

DRIVER = """
import json, os, signal, sys
import ray
from semtoken_rag.distributed import ray_ingest
from semtoken_rag.ingestion import IngestOptions

texts = json.loads(open(sys.argv[1], encoding="utf-8").read())

def die_after_two(report):
    print("committed", report.batches, report.encoded, flush=True)
    if report.batches == 2:
        os.kill(os.getpid(), signal.SIGKILL)

ray.init(address=sys.argv[4], include_dashboard=False, log_to_driver=False)
options = IngestOptions(batch_size=int(sys.argv[3]), progress=False, on_commit=die_after_two)
ray_ingest(texts, sys.argv[2], options=options)
print("not killed", flush=True)
"""


def _run_killed_driver(
    texts: list[str], store: Path, tmp_path: Path, address: str
) -> tuple[int, str]:
    src = tmp_path / "docs.json"
    src.write_text(json.dumps(texts), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(src), str(store), str(BATCH), address],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything the child left behind
    return proc.returncode, out


def test_driver_killed_mid_run_then_rerun_completes(
    ray_local: Any, shared_data: Path, tmp_path: Path
) -> None:
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.distributed import ray_ingest
    from semtoken_rag.encoder import TransformerEncoder
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.ingestion import IngestOptions
    from semtoken_rag.store import FingerprintStore

    texts = narrativeqa_chunks(shared_data, N)
    store = new_store(tmp_path / "st", small_pq(TRAIN_MIN))
    address = ray_local.get_runtime_context().gcs_address
    code, out = _run_killed_driver(texts, store, tmp_path, address)
    assert code == -signal.SIGKILL and "not killed" not in out
    committed = SAMPLE + BATCH
    assert out.split("\n")[:2] == [f"committed 1 {SAMPLE}", f"committed 2 {committed}"]
    with FingerprintStore(store) as st:
        assert st.verify() == []
        assert len(st) == committed  # the two committed batches, no part of a third
        # ... and they are the plan's first documents (batches are committed in its order)
        enc = TransformerEncoder.from_config(SemTokenConfig())
        keys = [fingerprint_key(t, enc.cache_id) for t in texts]
        assert st.contains(keys) == set(keys[:committed])
        assert st.stats().trained  # the first batch trained the codec, and that survived

    opts = IngestOptions(batch_size=BATCH, progress=False)
    report = ray_ingest(texts, store, options=opts)
    assert (report.already_stored, report.encoded, report.failed) == (committed, N - committed, [])
    assert not report.trained  # trained already: nothing retrained, nothing re-encoded

    ref = new_store(tmp_path / "ref", small_pq(TRAIN_MIN))
    with FingerprintStore(ref) as r:
        local = Compressor(SemTokenConfig(), encoder=enc, store=r).ingest(texts, opts)
        assert local.trained and local.encoded == N
    assert codebooks(store) == codebooks(ref)  # trained from the same sample: identical
    with FingerprintStore(ref) as r, FingerprintStore(store) as st:
        assert st.verify() == [] and len(st) == N
        assert_same_lookups(st, r, texts, local.cache_id)
        assert_same_lookups(st, r, sub_chunks(texts), local.cache_id)
        a, b = st.stats(), r.stats()
        assert (a.words, a.payload_bytes, a.staged_words) == (b.words, b.payload_bytes,
                                                              b.staged_words)  # fmt: skip
