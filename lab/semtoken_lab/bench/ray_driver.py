"""The Ray driver's ceiling (issue 25 point 3): what one driver receives and writes per second.

``ray_ingest`` runs with zero-cost actors, so the rate measured is the driver's (Ray Data's
transfer of the actors' results, then ``store.write``), not the encoder's:

* ``encoded``: the actor returns ``EncodedDocument`` objects computed before the run with the
  store's codebook (nothing is computed in the actor): the pure driver ceiling;
* ``fingerprints``: the actor's ``encode`` returns fingerprints at once (slices of a pool of
  unit vectors), and the actor still applies the store's codec (``encode_batch`` ->
  ``encode_documents``), as a GPU actor would after its forward pass.

Documents: 120-word windows of the NarrativeQA summaries (the previous benchmark's chunks, for
comparison with its 436 chunks/s = 61,160 tokens/s float32 ceiling).  Each run writes into a
copy of a template store (``pq64`` trained beforehand on other texts; ``float32`` raw), so no
codec training is inside the timings.  Rates are taken at the driver (``on_commit`` times):
documents committed after the first commit over the time from the first to the last commit.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.realdocs import load_documents

WORDS = 120
POOL = 65536


@dataclass(frozen=True)
class DriverRow:
    """One run: an actor variant, a codec, a number of actors."""

    variant: str
    codec: str
    actors: int
    documents: int
    words: int
    tokens: int
    startup_s: float
    steady_s: float
    total_s: float
    docs_per_s: float
    words_per_s: float
    tokens_per_s: float
    mb_per_s: float


def build_chunks(root: Path | None, n: int) -> list[str]:
    """``n`` distinct 120-word windows of the NarrativeQA summaries (stride shrunk until
    there are enough, as the previous benchmark did)."""
    from semtoken_rag.ingestion.chunking import chunk_words

    docs = [d.text for d in load_documents(["narrativeqa"], root)]
    for stride in range(WORDS, 0, -1):
        out = list(dict.fromkeys(c for d in docs for c in chunk_words(d, WORDS, WORDS - stride)))
        if len(out) >= n:
            return out[:n]
    raise ValueError(f"the summaries hold fewer than {n} distinct {WORDS}-word windows")


def unit_pool(dim: int, seed: int = 0) -> np.ndarray:
    """``(POOL, dim)`` random unit vectors (the actors' fingerprints are slices of it)."""
    v = np.random.default_rng(seed).standard_normal((POOL, dim), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def pool_fingerprints(text: str, pool: np.ndarray) -> Any:
    """Fingerprints of ``text``: a slice of the pool, one vector per word (no model)."""
    import zlib

    from semtoken_rag.core.segment import find_words
    from semtoken_rag.fingerprints import ChunkFingerprints

    spans = find_words(text)
    lo = zlib.crc32(text.encode()) % (len(pool) - len(spans))
    return ChunkFingerprints(pool[lo : lo + len(spans)], spans)


def encoded_documents(work: Path, codecs: Any, cache_id: str) -> list[Any]:
    """The run's documents (``texts.json``) with pool fingerprints, encoded with ``codecs``:
    deterministic, so an actor and the driver rebuild the same ones (nothing is pickled)."""
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import DocumentFingerprints, encode_documents

    pool = np.load(work / "pool.npy", mmap_mode="r")
    texts = json.loads((work / "texts.json").read_text(encoding="utf-8"))
    docs = [DocumentFingerprints(fingerprint_key(t, cache_id), t, pool_fingerprints(t, pool))
            for t in texts]  # fmt: skip
    return encode_documents(docs, codecs, encoder=cache_id)


def zero_cost_actor(variant: str, work: str) -> type:
    """A ``FingerprintActor`` subclass that loads no model (see the module docstring)."""
    from semtoken_rag.distributed import FingerprintActor
    from semtoken_rag.distributed.actor import object_column

    class ZeroCost(FingerprintActor):
        def __init__(self, config: Any, cache_id: str, codecs: Any) -> None:
            self.codecs, self.cache_id = codecs, cache_id
            self.pool = np.load(Path(work) / "pool.npy", mmap_mode="r")
            self.encoded: dict[str, Any] = {}
            if variant == "encoded":  # before the run: nothing is computed per batch
                docs = encoded_documents(Path(work), codecs, cache_id)
                self.encoded = {d.key: d for d in docs}

        def encode(self, texts: list[str]) -> list[Any]:
            return [pool_fingerprints(t, self.pool) for t in texts]

        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            if variant != "encoded":
                return super().__call__(batch)
            keys = [str(k) for k in batch["key"]]
            return {"id": batch["id"], "key": batch["key"],
                    "encoded": object_column([self.encoded[k] for k in keys]),
                    "error": object_column([""] * len(keys))}  # fmt: skip

    return ZeroCost


def make_templates(work: Path, codecs: Sequence[str], texts: list[str], cache_id: str) -> None:
    """The run's texts (``texts.json``) and, per codec, a template store (trained on other
    texts for a trained codec) that every run copies."""
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import DocumentFingerprints, FingerprintStore

    from semtoken_lab.bench.realdocs import train_store

    (work / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    pool = np.load(work / "pool.npy")
    for name in codecs:
        with FingerprintStore(work / f"template-{name}", codec=name) as store:
            trainers = [DocumentFingerprints(fingerprint_key("train " + t, cache_id),
                                             "train " + t, pool_fingerprints("train " + t, pool))
                        for t in texts]  # fmt: skip
            train_store(store, trainers, cache_id)


def local_write(
    work: Path, codec: str, tokens: int, n_texts: int, batch: int, cache_id: str
) -> DriverRow:
    """The same encoded documents written by ``store.write`` in this process, without Ray
    (what the driver's writer alone does per second)."""
    from semtoken_rag.store import FingerprintStore

    target = work / "run"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(work / f"template-{codec}", target)
    with FingerprintStore(target) as store:
        dim = int(np.load(work / "pool.npy", mmap_mode="r").shape[1])
        docs = encoded_documents(work, store.codec_set(dim), cache_id)
        before = store.stats().payload_bytes
        t0 = time.perf_counter()
        for lo in range(0, len(docs), batch):
            store.write(docs[lo : lo + batch])
        seconds = max(time.perf_counter() - t0, 1e-9)
        payload = store.stats().payload_bytes - before
    shutil.rmtree(target, ignore_errors=True)
    words = sum(d.n_words for d in docs)
    return DriverRow(
        variant="no Ray: store.write alone", codec=codec, actors=0, documents=len(docs),
        words=words, tokens=tokens, startup_s=0.0, steady_s=seconds, total_s=seconds,
        docs_per_s=len(docs) / seconds, words_per_s=words / seconds,
        tokens_per_s=len(docs) / seconds * tokens / max(1, n_texts),
        mb_per_s=payload / seconds / 1e6,
    )  # fmt: skip


def run_one(
    texts: list[str], tokens: int, work: Path, variant: str, codec: str, actors: int,
    opts: dict[str, Any],
) -> DriverRow:  # fmt: skip
    """One ``ray_ingest`` into a copy of the codec's template store."""
    from semtoken_rag.distributed import RayOptions, ray_ingest
    from semtoken_rag.ingestion import IngestOptions
    from semtoken_rag.store import FingerprintStore

    target = work / "run"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(work / f"template-{codec}", target)
    commits: list[tuple[float, int, int]] = []
    ingest_opts = IngestOptions(
        batch_size=int(opts["batch"]), progress=False,
        on_commit=lambda r: commits.append((time.perf_counter(), r.encoded, r.words)),
    )  # fmt: skip
    pool = RayOptions(actors=actors, cpus_per_actor=float(opts["cpus_per_actor"]))
    t0 = time.perf_counter()
    with FingerprintStore(target) as store:
        before = store.stats().payload_bytes
        report = ray_ingest(texts, store, ray=pool, options=ingest_opts,
                            actor_class=zero_cost_actor(variant, str(work)))  # fmt: skip
        payload = store.stats().payload_bytes - before
    total = time.perf_counter() - t0
    shutil.rmtree(target, ignore_errors=True)
    (t1, d1, w1), (t2, d2, w2) = commits[0], commits[-1]
    steady = max(t2 - t1, 1e-9)
    docs = d2 - d1
    return DriverRow(
        variant=variant, codec=codec, actors=report.workers, documents=report.encoded,
        words=report.words, tokens=tokens, startup_s=t1 - t0, steady_s=steady, total_s=total,
        docs_per_s=docs / steady, words_per_s=(w2 - w1) / steady,
        tokens_per_s=docs / steady * tokens / max(1, len(texts)),
        mb_per_s=docs / steady * payload / max(1, report.encoded) / 1e6,
    )  # fmt: skip


def run_driver(
    out: Path,
    *,
    chunks: int = 2000,
    codecs: Sequence[str] = ("pq64", "float32"),
    actors: Sequence[int] = (1, 2),
    variants: Sequence[str] = ("encoded", "fingerprints"),
    batch: int = 64,
    cpus: int = 2,
    cpus_per_actor: float = 1.0,
    data_root: Path | None = None,
) -> list[DriverRow]:
    """Every (variant, codec, actors) run on a local Ray of ``cpus`` CPUs (or on this
    process's Ray, when it has one already: left running); ``ray_driver.json`` / ``.md``."""
    import tempfile

    import ray

    from semtoken_lab.bench.realdocs import load_encoder

    out.mkdir(parents=True, exist_ok=True)
    texts = build_chunks(data_root, chunks)
    enc = load_encoder()
    ids = enc.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    tokens = sum(len(x) for x in ids)
    own_ray = not ray.is_initialized()
    work = Path(tempfile.mkdtemp(prefix="ray-driver-", dir=out))
    rows: list[DriverRow] = []
    info = {"documents": len(texts), "words_per_document": WORDS, "tokens": tokens,
            "batch": batch, "cpus_per_actor": cpus_per_actor}  # fmt: skip
    try:
        np.save(work / "pool.npy", unit_pool(enc.dim))
        make_templates(work, codecs, texts, enc.cache_id)
        for codec in codecs:
            rows.append(local_write(work, codec, tokens, len(texts), batch, enc.cache_id))
        t0 = time.perf_counter()
        if own_ray:  # a caller's Ray keeps its own Ray Data settings
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
        info["ray_start_s"] = time.perf_counter() - t0
        info["ray_cpus"] = int(ray.cluster_resources().get("CPU", cpus))
        opts = {"batch": batch, "cpus_per_actor": cpus_per_actor}
        for variant in variants:
            for codec in codecs:
                for k in actors:
                    rows.append(run_one(texts, tokens, work, variant, codec, k, opts))
                    write_report(out, info, rows)
    finally:
        if own_ray and ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return rows


#: The previous design's figures (docs/benchmarks.md, docs/store.md; same 2-core VM).
OLD = (
    "Previous design (float32 arrays to the driver, codec applied in the driver's put_many): "
    "driver ceiling 436 chunks/s = 61,160 tokens/s = 82 MB/s with float32 (2 actors, 2,000 "
    "120-word chunks, benchmarks/results/ray_ingest_400); with pq64 the driver's put_many "
    "encoded at 35-47 entries/s of 238 words (8,000-11,000 vectors/s, docs/store.md "
    '"At scale"), which bounded a pq64 ingestion whatever the actors.'
)


def write_report(out: Path, info: dict[str, Any], rows: Sequence[DriverRow]) -> None:
    """``ray_driver.json`` and ``ray_driver.md``."""
    from semtoken_lab.bench.timing import machine_info

    data = {"machine": machine_info(), "workload": info, "rows": [asdict(r) for r in rows]}
    (out / "ray_driver.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "ray_driver.md").write_text("\n".join(markdown(info, rows)) + "\n", encoding="utf-8")


def markdown(info: dict[str, Any], rows: Sequence[DriverRow]) -> list[str]:
    """The table, with the previous design's figures beside it."""
    lines = [
        f"{info['documents']:,} documents of {info['words_per_document']} words "
        f"({info['tokens']:,} MiniLM tokens), batches of {info['batch']}, local Ray of "
        f"{info['ray_cpus']} CPUs. *encoded*: actors return precomputed EncodedDocuments (the "
        "driver's ceiling); *fingerprints*: actors return fingerprints at once and apply the "
        "store's codec; *no Ray*: the same encoded documents written by `store.write` in one "
        "process. Steady = first to last commit, at the driver.",
        "",
        "| actors return | codec | actors | startup s | steady s | docs/s | words/s | tokens/s | "
        "MB/s payload | total s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.variant} | {r.codec} | {r.actors} | {r.startup_s:.1f} | {r.steady_s:.1f} | "
            f"**{r.docs_per_s:,.0f}** | {r.words_per_s:,.0f} | {r.tokens_per_s:,.0f} | "
            f"{r.mb_per_s:.1f} | {r.total_s:.1f} |"
        )
    return [*lines, "", OLD]
