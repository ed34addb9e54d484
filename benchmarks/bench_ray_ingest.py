"""Distributed ingestion on Ray against plain single-process ingestion, on the same chunks.

Chunks are 120-word windows of the NarrativeQA summaries in ``../shared/data`` (the window
stride is chosen so the requested number of *distinct* chunks exists: 81 summaries hold only
~46k words, so 10k chunks need heavily overlapping windows; each chunk is still encoded on its
own, so the cost per chunk is that of a distinct 120-word text).

Each chunk is ingested as a short document of its own (a pre-cut chunk: its exact text hits by
key).  Measured, each into a fresh store directory (deleted afterwards), all through public APIs:

* **single**: what ``semtoken-rag ingest`` runs without ``--ray``: the encoder loaded, then
  :func:`semtoken_rag.ingestion.ingest` with a ``LocalRunner`` (one process, torch threads as
  given);
* **ray k**: :func:`semtoken_rag.distributed.ray_ingest` with ``k`` actors on a local Ray of
  ``--cpus`` CPUs: Ray start-up (once), then per run the time until the first batch starts
  encoding on an actor (encoder probe + actor start), the encoding span (first batch start to
  last batch end, over all actors; throughput = chunks / span), the commit tail (last batch
  end to the last commit), total;
* **driver ceiling**: ``ray_ingest`` with actors that return fingerprints of the right shape
  without running the encoder (the store's codec still applied in the actor): what one driver
  can receive and commit per second (the bound on how many fast GPU actors one driver feeds).

Run (timings are of this machine; results in benchmarks/results/, see docs/benchmarks.md)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_ray_ingest.py --chunks 400 \\
        --batch 16 --out benchmarks/results/ray_ingest_400
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_ray_ingest.py --chunks 10000 \\
        --only ray2,single1 --out benchmarks/results/ray_ingest_10k
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "narrativeqa"
WORDS = 120


def build_chunks(n: int) -> tuple[list[str], int]:
    """``n`` distinct 120-word windows and the stride that produced them."""
    from semtoken_rag.ingestion.chunking import chunk_words

    with (DATA / "test.jsonl").open(encoding="utf-8") as fh:
        docs = list(dict.fromkeys(json.loads(line)["context"] for line in fh if line.strip()))
    for stride in range(WORDS, 0, -1):
        out = list(dict.fromkeys(c for d in docs for c in chunk_words(d, WORDS, WORDS - stride)))
        if len(out) >= n:
            return out[:n], stride
    raise SystemExit(f"the summaries hold fewer than {n} distinct {WORDS}-word windows")


def encoder_tokens(texts: list[str]) -> int:
    """MiniLM tokens of the chunks (no special tokens), for tokens/s figures."""
    from transformers import AutoTokenizer

    from semtoken_rag.models import packaged_encoder_dir

    tok = AutoTokenizer.from_pretrained(str(packaged_encoder_dir()))
    return sum(len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"])


def store_options(codec: str) -> dict[str, Any]:
    """``codec=`` for stores that have codecs (older stores are float32 only)."""
    import inspect

    from semtoken_rag.store import FingerprintStore

    params = inspect.signature(FingerprintStore).parameters
    return {"codec": codec} if "codec" in params and codec != "default" else {}


def run_single(texts: list[str], threads: int, batch: int, codec: str) -> dict[str, Any]:
    """The single-process ingest path, timed in phases."""
    import torch

    from semtoken_rag import SemTokenConfig
    from semtoken_rag.encoder import TransformerEncoder
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, ingest
    from semtoken_rag.store import FingerprintStore

    torch.set_num_threads(threads)
    folder = Path(tempfile.mkdtemp(prefix="bench-single-"))
    try:
        t0 = time.perf_counter()
        enc = TransformerEncoder.from_config(SemTokenConfig())
        t1 = time.perf_counter()
        with FingerprintStore(folder, **store_options(codec)) as store:
            options = IngestOptions(batch_size=batch, progress=False)
            n = ingest(texts, store, LocalRunner(enc), options).encoded
            size = store.stats().bytes_on_disk
            codec = store_codec(store)
        t2 = time.perf_counter()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "config": f"single, {threads} torch thread(s)",
        "chunks": n,
        "startup_s": t1 - t0,
        "encode_span_s": t2 - t1,
        "steady_chunks_per_s": n / (t2 - t1),
        "total_s": t2 - t0,
        "store_bytes": size,
        "store_codec": codec,
    }


def store_codec(store: Any) -> str:
    """The store's codec name (stores without codecs keep float32)."""
    codec = getattr(store, "codec", None)
    return str(getattr(codec, "name", "float32"))


def shape_only_actor() -> type:
    """A FingerprintActor whose ``encode`` skips the model: random unit vectors per word."""
    from semtoken_rag.core.segment import find_words
    from semtoken_rag.distributed import FingerprintActor
    from semtoken_rag.fingerprints import ChunkFingerprints

    class ShapeOnly(FingerprintActor):
        def encode(self, texts: list[str]) -> list[ChunkFingerprints]:
            rng = np.random.default_rng(0)
            out = []
            for t in texts:
                spans = find_words(t)
                v = rng.standard_normal((len(spans), self.encoder.dim)).astype(np.float32)
                v /= np.linalg.norm(v, axis=1, keepdims=True)
                out.append(ChunkFingerprints(v, spans))
            return out

    return ShapeOnly


def timed_actor(base: type, log: Path) -> type:
    """``base`` that appends ``{"start", "end", "n"}`` (wall clock) of every batch to ``log``.

    Why: commits reach the driver in bursts (Ray Data streams finished blocks), so the encoding
    span is taken where it happens, in the actors (one machine: one clock).
    """

    class Timed(base):  # type: ignore[valid-type, misc]
        def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
            start = time.time()
            out = super().__call__(batch)
            line = json.dumps({"start": start, "end": time.time(), "n": len(out["key"])})
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            return out

    return Timed


def run_ray(
    texts: list[str], actors: int, batch: int, codec: str, label: str, base: Any = None
) -> dict[str, Any]:
    """``ray_ingest`` on the running local Ray; phases from the actors' batch times."""
    from semtoken_rag.distributed import FingerprintActor, RayOptions, ray_ingest
    from semtoken_rag.ingestion import IngestOptions
    from semtoken_rag.store import FingerprintStore

    folder = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    log = folder / "batches.jsonl"
    try:
        t0 = time.time()
        with FingerprintStore(folder / "store", **store_options(codec)) as store:
            report = ray_ingest(
                texts,
                store,
                ray=RayOptions(actors=actors),
                options=IngestOptions(batch_size=batch, progress=False),
                actor_class=timed_actor(base or FingerprintActor, log),
            )
            size = store.stats().bytes_on_disk
            codec = store_codec(store)
        t1 = time.time()
        spans = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    first = min(b["start"] for b in spans)
    last = max(b["end"] for b in spans)
    busy = sum(b["end"] - b["start"] for b in spans)
    return {
        "config": label,
        "chunks": report.encoded,
        "actors": report.workers,
        "startup_s": first - t0,
        "encode_span_s": last - first,
        "steady_chunks_per_s": report.encoded / (last - first),
        "actor_busy_s": busy,
        "commit_tail_s": t1 - last,
        "total_s": t1 - t0,
        "store_bytes": size,
        "store_codec": codec,
    }


#: The steps ``--only`` accepts (the digit: torch threads for single, actors for ray).
STEPS = ("single1", "single2", "ray1", "ray2", "ceiling")


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    """The options, and the steps of ``--only`` in order (an unknown one exits)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--batch", type=int, default=64, help="chunks per batch / transaction")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument(
        "--only",
        default="single1,ray1,ray2,single2,ceiling,single1",
        help="steps in order (repeats allowed): single1, single2, ray1, ray2, ceiling",
    )
    parser.add_argument(
        "--codec",
        default="float32",
        help="store codec (float32: exact, no codebook training in the timings; 'default': "
        "the store's default)",
    )
    parser.add_argument(
        "--ceiling-chunks", type=int, default=2000, help="chunks of the driver-ceiling run"
    )
    parser.add_argument("--out", type=Path, default=Path("bench_out/ray"))
    args = parser.parse_args()
    steps = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise SystemExit(f"unknown step(s) {sorted(unknown)}")
    return args, steps


def start_local_ray(cpus: int) -> tuple[Any, float]:
    """A local Ray of ``cpus`` CPUs, quiet, and its start-up time (paid once, not per run)."""
    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    seconds = time.perf_counter() - t0
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray, seconds


def run_step(step: str, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """One step of ``--only``: its row of timings."""
    if step.startswith("single"):
        return run_single(texts, int(step[-1]), args.batch, args.codec)
    if step.startswith("ray"):
        k = int(step[-1])
        return run_ray(texts, k, args.batch, args.codec, f"ray, {k} actor(s)")
    ceiling_texts = build_chunks(max(args.chunks, args.ceiling_chunks))[0]
    label = "driver ceiling (2 actors, no encoder)"
    return run_ray(ceiling_texts, 2, args.batch, args.codec, label, shape_only_actor())


def add_rates(rows: list[dict[str, Any]], tokens: int, chunks: int) -> None:
    """Steady tokens/s and MB/s of every row, from its chunks/s.

    The ceiling's chunks have the same length (120-word windows), so the tokens per chunk of
    the main chunks apply to it too.
    """
    for r in rows:
        r["steady_tokens_per_s"] = r["steady_chunks_per_s"] * tokens / chunks
        r["steady_mb_per_s"] = r["steady_chunks_per_s"] * r["store_bytes"] / r["chunks"] / 1e6


def main() -> int:
    """Run the steps in order, then write ``ray_ingest.json`` into ``--out`` and print it."""
    args, steps = parse_args()
    texts, stride = build_chunks(args.chunks)
    tokens = encoder_tokens(texts)
    ray: Any = None
    ray_start = float("nan")
    if any(s.startswith(("ray", "ceiling")) for s in steps):
        ray, ray_start = start_local_ray(args.cpus)
    # In the order given (repeat a step, e.g. single1 first and last, to see the drift of a
    # shared machine's load over the run).
    rows: list[dict[str, Any]] = []
    for step in steps:
        rows.append(run_step(step, texts, args))
        print(rows[-1], flush=True)
    if ray is not None:
        ray.shutdown()
    add_rates(rows, tokens, len(texts))
    result = {
        "chunks": len(texts),
        "words_per_chunk": WORDS,
        "stride_words": stride,
        "encoder_tokens": tokens,
        "batch": args.batch,
        "ray_cpus": args.cpus,
        "ray_start_s": ray_start,
        "codec_requested": args.codec,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_ingest.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
