"""``semtoken-rag bench --store-scale N[,N...]``: the fingerprint store at corpus scale.

N chunk-sized documents of real texts and real PQ codes (:mod:`semtoken_lab.bench.
scale_corpus`) are written with ``FingerprintStore.write`` in batches of 64 (ingestion's batch)
into a store whose codec was trained first on real MiniLM fingerprints (the training documents
count among the N).  The writer receives ``EncodedDocument`` objects as ``encode_documents``
builds them; only the PQ assignment of each document is skipped, so the largest N measures the
writer and the lookups, not N PQ encodes (``bench_writer.py`` measures the encode).

Measured per N, each phase in its own process (timings and peak RSS are that phase's alone):

* **writer**: documents/s and words/s of ``store.write`` (building the documents is timed
  apart), the final ``close`` (WAL checkpoint), peak RSS;
* **size**: every file of the directory after close, per document and per 1k encoder tokens;
* **open**: with and without ``PRAGMA quick_check``, the database dropped from the page cache;
* **lookups** of 10 chunks (``store.lookup``), 200 queries of random documents: *exact* (the
  stored documents' own texts: found by key) and *sliced* (the same documents without their
  first and last 10-30 words: found by shingles, verified word by word); *fresh* drops the
  database from the OS page cache (``fsync`` + ``posix_fadvise(DONTNEED)``) before each query
  (SQLite's own cache of the open connection stays, as in a server), *warm* repeats them;
* **eviction** at the smallest N: the same documents into ``max_bytes`` = half their payload.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.realdocs import dir_bytes, percentiles, table_bytes
from semtoken_lab.bench.scale_children import BATCH

#: Sources of the recycled chunks (every text source of shared/data: fewer copies per chunk).
SCALE_SOURCES = ("narrativeqa", "hotpotqa", "scientific_qa", "gov_report", "meeting", "legal",
                 "natural_question", "coursera", "quality", "loogle", "essays")  # fmt: skip
#: Pages per table (``dbstat``, a full read of the file) are listed up to this database size.
TABLES_MAX_BYTES = 4 << 30


@dataclass(frozen=True)
class EvictionRow:
    """The smallest N written into a store limited to half their payload."""

    max_bytes: int
    written: int
    documents_after: int
    payload_after: int
    bytes_on_disk: int
    write_docs_per_s: float
    oldest_tenth_present: float
    newest_tenth_present: float


@dataclass(frozen=True)
class ScaleRow:
    """One store size (times in ms unless named otherwise; lookups are of 10 chunks)."""

    documents: int
    codec: str
    words: int
    tokens: int
    copies_per_chunk: float
    write_s: float
    write_wall_s: float
    batch: int
    pragmas: dict[str, int]
    written_bytes_per_doc: float
    read_bytes_per_doc: float
    write_docs_per_s: float
    write_words_per_s: float
    generate_docs_per_s: float
    close_s: float
    bytes_on_disk: int
    bytes_per_doc: float
    bytes_per_1k_tokens: float
    open_ms_verify: float
    open_ms_no_verify: float
    lookups: dict[str, dict[str, float]]
    peak_rss_writer_mib: float
    peak_rss_lookup_mib: float
    eviction: EvictionRow | None = None
    tables: dict[str, int] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)


def prepare(
    work: Path, root: Path | None, codec: Any, pool_chunks: int, cache: Path, distinct: bool
) -> dict[str, Any]:
    """Chunks, their tokens, real fingerprints of a pool of them, a trained template store and
    the pool's codes (the :class:`ScaleCorpus` recipe) in ``work``."""
    from semtoken_rag.store import FingerprintStore
    from semtoken_rag.store.codebooks import runtime_codec

    from semtoken_lab.bench import realdocs
    from semtoken_lab.bench.scale_corpus import ScaleCorpus

    chunks = [c for c in realdocs.chunk_documents(realdocs.load_documents(SCALE_SOURCES, root))
              if _marker_safe(c)]  # fmt: skip
    if not chunks:
        raise FileNotFoundError(f"no benchmark documents under {root or 'the default data root'}")
    enc = realdocs.load_encoder()
    ids = enc.tokenizer(chunks, add_special_tokens=False, verbose=False)["input_ids"]
    tokens = np.array([len(x) for x in ids], np.int64)
    pool = chunks[:: max(1, len(chunks) // pool_chunks)][:pool_chunks]
    fps, encode_s = realdocs.cached_fingerprints(pool, enc, cache)
    docs = realdocs.document_fingerprints(pool, fps, enc.cache_id)
    with FingerprintStore(work / "template", codec=codec) as store:
        n_train, train_s = realdocs.train_store(store, docs, enc.cache_id)
        codecs = store.codec_set(enc.dim)
        stats = store.stats()
    vectors = np.concatenate([fp.vectors for fp in fps])
    codes = runtime_codec(codecs.book).encode(vectors)
    ScaleCorpus(chunks, tokens, codes, codecs, enc.cache_id, distinct=distinct).save(work)
    words = [len(fp.word_spans) for fp in fps]
    return {
        "chunks": len(chunks),
        "mean_chunk_words": float(np.mean([len(c.split()) for c in chunks])),
        "mean_chunk_tokens": float(tokens.mean()),
        "pool_chunks": len(pool),
        "pool_vectors": int(sum(words)),
        "pool_encode_s": encode_s,
        "codec": stats.codec,
        "train_min": int(codec.train_min),
        "train_docs": n_train,
        "train_s": train_s,
        "train_cos": float(codecs.book.train_cos),
        "encoder": enc.cache_id,
        "distinct_texts": distinct,
    }


def _marker_safe(chunk: str) -> bool:
    """Whether the chunk's first word is followed by whitespace (the marker that replaces it
    stays one word)."""
    from semtoken_rag.core.segment import find_words

    spans = find_words(chunk)
    return len(spans) > 1 and chunk[int(spans[0, 1])].isspace()


def _run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-m", "semtoken_lab.bench.scale_children", kind, json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"store-scale {kind} child failed (exit {res.returncode})")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _new_store(work: Path, name: str) -> Path:
    """A copy of the trained template store (its training documents included)."""
    target = work / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(work / "template", target)
    return target


def _lookup_summary(look: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for kind in ("exact", "sliced"):
        r = look[kind]
        fresh, warm = percentiles(r["fresh"]), percentiles(r["warm"])
        out[kind] = {"fresh_p50_ms": fresh["p50"], "fresh_p99_ms": fresh["p99"],
                     "warm_p50_ms": warm["p50"], "warm_p99_ms": warm["p99"],
                     "first_fresh_ms": float(r["fresh"][0]),
                     "hit_rate": min(r["fresh_hit_rate"], r["warm_hit_rate"])}  # fmt: skip
    return out


def measure(n: int, work: Path, info: dict[str, Any], opts: dict[str, Any]) -> ScaleRow:
    """One row: a store of ``n`` documents under ``work``, measured, then deleted."""
    store_dir = _new_store(work, f"store-{n}")
    gen = max(0, n - int(info["train_docs"]))
    base = {"work": str(work), "dir": str(store_dir), "n": gen}
    ins = _run_child("write", {**base, "batch": opts["batch"], "profile": opts["profile"],
                               "pragmas": opts["pragmas"]})  # fmt: skip
    on_disk = dir_bytes(store_dir)
    db_file = store_dir / "fingerprints.sqlite3"
    tables = table_bytes(db_file) if db_file.stat().st_size <= TABLES_MAX_BYTES else {}
    opened = {v: _run_child("lookup", {**base, "verify": v, "lookups": False}) for v in (1, 0)}
    look = _run_child("lookup", {**base, "verify": 0})
    evict = _eviction(work, gen, ins["payload"], opts) if opts["eviction"] else None
    shutil.rmtree(store_dir, ignore_errors=True)
    w = max(ins["write_s"], 1e-9)
    return ScaleRow(
        documents=ins["documents"], codec=info["codec"], words=ins["words"],
        tokens=ins["tokens"], copies_per_chunk=gen / info["chunks"], write_s=ins["write_s"],
        write_wall_s=ins["wall_s"], batch=opts["batch"], pragmas=opts["pragmas"],
        written_bytes_per_doc=ins["wchar"] / max(1, gen),
        read_bytes_per_doc=ins["rchar"] / max(1, gen),
        write_docs_per_s=gen / w, write_words_per_s=ins["words"] / w,
        generate_docs_per_s=gen / max(ins["generate_s"], 1e-9), close_s=ins["close_s"],
        bytes_on_disk=on_disk, bytes_per_doc=on_disk / max(1, ins["documents"]),
        bytes_per_1k_tokens=on_disk / max(1, ins["tokens"]) * 1000,
        open_ms_verify=opened[1]["open_ms"], open_ms_no_verify=opened[0]["open_ms"],
        lookups=_lookup_summary(look), peak_rss_writer_mib=ins["peak_rss_mib"],
        peak_rss_lookup_mib=look["peak_rss_mib"], eviction=evict, tables=tables,
        profile=ins["profile"],
    )  # fmt: skip


def _eviction(work: Path, n: int, payload: int, opts: dict[str, Any]) -> EvictionRow:
    from semtoken_rag.store import FingerprintStore

    from semtoken_lab.bench.scale_corpus import ScaleCorpus

    store_dir = _new_store(work, f"evict-{n}")
    limit = payload // 2
    ins = _run_child("write", {"work": str(work), "dir": str(store_dir), "n": n,
                               "batch": opts["batch"], "pragmas": opts["pragmas"],
                               "max_bytes": limit})  # fmt: skip
    corpus = ScaleCorpus.load(work)
    tenth = max(1, n // 10)
    with FingerprintStore(store_dir) as s:
        old = s.contains([corpus.key(i) for i in range(tenth)])
        new = s.contains([corpus.key(i) for i in range(n - tenth, n)])
        stats = s.stats()
    row = EvictionRow(
        max_bytes=limit, written=n, documents_after=stats.documents,
        payload_after=stats.payload_bytes, bytes_on_disk=dir_bytes(store_dir),
        write_docs_per_s=n / max(ins["write_s"], 1e-9),
        oldest_tenth_present=len(old) / tenth, newest_tenth_present=len(new) / tenth,
    )  # fmt: skip
    shutil.rmtree(store_dir, ignore_errors=True)
    return row


def run_store_scale(
    sizes: list[int],
    out: Path,
    codec: str | None = None,
    data_root: Path | None = None,
    work: Path | None = None,
    *,
    pool_chunks: int = 240,
    train_min: int | None = None,
    batch: int = BATCH,
    profile: bool = False,
    pragmas: dict[str, int] | None = None,
    distinct: bool = False,
) -> list[ScaleRow]:
    """Measure every size (smallest first, with the eviction run); write ``store_scale.json``
    and ``store_scale.md`` into ``out`` after each size.

    Args:
        pool_chunks: Real chunks encoded with MiniLM (their codes are recycled).
        train_min: Override the codec's ``train_min`` (small smoke runs).
        batch: Documents per ``store.write`` (one transaction; ingestion's default is 64).
        profile: cProfile the writer's ``store.write`` calls (top functions in the JSON).
        pragmas: Experiment: PRAGMAs set on the writer's connection (see :data:`PRAGMAS`).
        distinct: Tag recycled copies' words so every shingle is distinct (see
            :mod:`~semtoken_lab.bench.scale_corpus`).
    """
    from semtoken_rag.store import get_codec

    spec = get_codec(codec)
    if train_min is not None:
        spec = spec.with_options(train_min=train_min)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="semtoken-store-scale-", dir=work))
    rows: list[ScaleRow] = []
    try:
        info = prepare(tmp, data_root, spec, pool_chunks, out / "cache", distinct)
        for i, n in enumerate(sorted(sizes)):
            opts = {"batch": batch, "profile": profile, "eviction": i == 0,
                    "pragmas": dict(pragmas or {})}  # fmt: skip
            rows.append(measure(n, tmp, info, opts))
            write(rows, info, out)
            r = rows[-1]
            print(f"[store-scale] {n:,} documents: {r.write_docs_per_s:,.0f} docs/s written, "
                  f"{r.bytes_per_1k_tokens:,.0f} B per 1k tokens", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def write(rows: list[ScaleRow], info: dict[str, Any], out: Path) -> None:
    """``store_scale.json`` and ``store_scale.md``."""
    from semtoken_lab.bench.scale_report import markdown
    from semtoken_lab.bench.timing import machine_info

    data = {"machine": machine_info(), "workload": info, "rows": [asdict(r) for r in rows]}
    (out / "store_scale.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "store_scale.md").write_text("\n".join(markdown(rows, info)) + "\n", encoding="utf-8")
