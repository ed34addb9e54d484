"""First use from many threads and tasks: a fresh process, a barrier, 16 threads and 16 asyncio
tasks calling one brand-new ``Compressor`` at once (what a web server behind a LangChain
retriever does at start-up).  All must succeed, equal the sequential results, and the encoder
and the counter must be built once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    from concurrent.futures import ThreadPoolExecutor

    import semtoken_rag.encoder as encoder_module
    import semtoken_rag.tokens as tokens_module
    from semtoken_rag import Compressor, SemTokenConfig

    loads = {"encoder": 0, "counter": 0}
    lock = threading.Lock()
    real_init = encoder_module.TransformerEncoder.__init__
    real_counter = tokens_module.load_counter

    def counting_init(self, *a, **k):
        with lock:
            loads["encoder"] += 1
        real_init(self, *a, **k)

    def counting_counter(*a, **k):
        with lock:
            loads["counter"] += 1
        return real_counter(*a, **k)

    encoder_module.TransformerEncoder.__init__ = counting_init
    tokens_module.load_counter = counting_counter

    N = 16
    requests = [
        ([f"Chunk {i} speaks of rivers. The ferry left at {i} o'clock. Nobody waved.",
          "A second chunk, shared by all, about the harbour master and his dog."],
         f"When did ferry {i} leave?")
        for i in range(N)
    ]

    def run_threads(comp):
        barrier = threading.Barrier(N)

        def call(req):
            barrier.wait()
            return comp.compress(req[0], req[1], ratio=0.5)

        with ThreadPoolExecutor(N) as pool:
            futures = [pool.submit(call, r) for r in requests]
            out, errors = [], []
            for f in futures:
                try:
                    out.append(f.result())
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
        return out, errors

    async def run_tasks(comp):
        results = await asyncio.gather(
            *(comp.acompress(r[0], r[1], ratio=0.5) for r in requests), return_exceptions=True
        )
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        return [r for r in results if not isinstance(r, BaseException)], errors

    cfg = SemTokenConfig(count_tokenizer="all-MiniLM-L6-v2")
    threaded, t_errors = run_threads(Compressor(cfg))
    loads_threads = dict(loads)
    tasked, a_errors = asyncio.run(run_tasks(Compressor(cfg)))
    sequential_comp = Compressor(cfg)
    sequential = [sequential_comp.compress(r[0], r[1], ratio=0.5) for r in requests]

    def key(res):
        return [[c.text, [list(o) for o in c.offsets]] for c in res.chunks]

    print(json.dumps({
        "thread_errors": t_errors,
        "task_errors": a_errors,
        "threads_equal": [key(a) for a in threaded] == [key(s) for s in sequential],
        "tasks_equal": [key(a) for a in tasked] == [key(s) for s in sequential],
        "loads_after_threads": loads_threads,
        "loads_total": loads,
    }))
    """
)


def test_first_use_from_16_threads_and_16_tasks() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["thread_errors"] == [], report["thread_errors"][:3]
    assert report["task_errors"] == [], report["task_errors"][:3]
    assert report["threads_equal"] and report["tasks_equal"]
    # One compressor, hit by 16 threads at once: one encoder and one counter.
    assert report["loads_after_threads"] == {"encoder": 1, "counter": 1}
    # Three compressors in all (threads, tasks, sequential reference): three of each.
    assert report["loads_total"] == {"encoder": 3, "counter": 3}


def test_query_embeddings_leave_the_shared_tokenizer_untouched() -> None:
    """``encode_queries`` (pooled relevance) cuts and pads the queries itself: a fast tokenizer
    keeps ``truncation``/``padding`` set for every later call, so setting them would race with
    chunk tokenisation in other threads (a chunk silently cut to the window).  The embeddings
    equal those of the tokenizer's own truncation and padding, computed on a copy of it."""
    import copy

    import numpy as np
    import torch

    from semtoken_rag import SemTokenConfig
    from semtoken_rag.core.pooling import l2_normalize
    from semtoken_rag.encoder import TransformerEncoder

    enc = TransformerEncoder.from_config(SemTokenConfig())
    queries = ["Who is Maskull?", " ".join(["lighthouse"] * 300), "A storm took his boat."]
    enc.encode_texts(["Any chunk first, as a running engine has."])
    got = enc.encode_queries(queries)
    backend = enc.tokenizer.backend_tokenizer
    assert backend.truncation is None and backend.padding is None
    batch = copy.deepcopy(enc.tokenizer)(
        queries, padding=True, truncation=True, max_length=enc.window_tokens, return_tensors="pt"
    )
    with torch.inference_mode():
        hidden = enc.model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    want = l2_normalize(((hidden * mask).sum(1) / mask.sum(1)).float().numpy())
    np.testing.assert_allclose(got, want, atol=1e-5)
