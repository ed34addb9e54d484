"""Splitter hit rate and latency (issue 23 point 5): whole documents ingested once, then cut
by the frameworks' splitters (:mod:`semtoken_lab.bench.chunkers`) and served from the store.

Real documents (NarrativeQA contexts, L-Eval gov_report and meeting transcripts, the essays)
are ingested with the library's ``ingest`` (its sample batch trains ``pq64`` on them) from their
real MiniLM fingerprints (encoded once, cached).  Per splitter and size:

* **served**: chunks ``store.lookup`` returns fingerprints for (no encoder pass needed), without
  and with the framework's hints (``ChunkSource(document, start)``);
* **verified**: served chunks with one vector per word (``shape ok``), and served words whose
  vectors equal the stored document's at the chunk's true position (``aligned``; the whole
  document is read back by key for the comparison);
* **latency** of 10-chunk lookups (random chunks of that splitter), warm, p50/p99;

and, as the reference, ``ingest``'s own word windows (256 words, overlap 32) ingested verbatim
as documents of their own (vectors sliced from the documents') and looked up by key.  Size: the
store's files after close per 1k encoder tokens, against the same words in the previous
format's terms (codes + 2 bytes of spans per word), i.e. the locator's overhead.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench import realdocs
from semtoken_lab.bench.chunkers import Cut

SPLIT_SOURCES = ("narrativeqa", "gov_report", "meeting", "essays")
QUERY = 10


@dataclass(frozen=True)
class SplitRow:
    """One splitter at one size (latencies in ms, per 10-chunk lookup)."""

    splitter: str
    size: int
    chunks: int
    mean_words: float
    not_substrings: int
    bad_start_hints: int
    served: float
    served_words: float
    served_hinted: float
    shape_ok: float
    aligned: float | None
    aligned_hinted: float | None
    warm_p50_ms: float
    warm_p99_ms: float
    hinted_p50_ms: float
    hinted_p99_ms: float


class CachedEncoder:
    """The real encoder's identity serving cached fingerprints (``ingest``'s encoder)."""

    def __init__(self, cache_id: str, dim: int, table: dict[str, Any]) -> None:
        self.cache_id, self.dim, self.table = cache_id, dim, table

    def encode_texts(self, texts: Sequence[str]) -> list[Any]:
        return [self.table[t] for t in texts]


def ingest_store(path: Path, texts: Sequence[str], names: Sequence[str], enc: CachedEncoder,
                 codec: Any) -> dict[str, Any]:  # fmt: skip
    """``ingest`` the texts into a new store at ``path``; sizes after close."""
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, SourceDocument, ingest
    from semtoken_rag.store import FingerprintStore

    docs = [SourceDocument(t, (n,)) for t, n in zip(texts, names, strict=True)]
    with FingerprintStore(path, codec=codec) as store:
        report = ingest(docs, store, LocalRunner(enc), IngestOptions(progress=False))
        stats = store.stats()
    return {"documents": stats.documents, "words": stats.words, "payload": stats.payload_bytes,
            "staged_words": stats.staged_words, "disk": realdocs.dir_bytes(path),
            "tables": realdocs.table_bytes(path / "fingerprints.sqlite3"),
            "ingest_s": report.seconds, "trained": report.trained}  # fmt: skip


def sliced_fingerprints(cut: Cut, doc_fp: Any) -> Any:
    """The chunk's fingerprints sliced from its document's (its words mapped by position)."""
    from semtoken_rag.core.segment import find_words
    from semtoken_rag.fingerprints import ChunkFingerprints

    spans = find_words(cut.text)
    idx = np.searchsorted(doc_fp.word_spans[:, 1], spans[:, 0] + (cut.start or 0), side="right")
    return ChunkFingerprints(doc_fp.vectors[idx], spans)


def _word_offset(doc_fp: Any, start: int) -> int:
    return int(np.searchsorted(doc_fp.word_spans[:, 1], start, side="right"))


def _aligned(cut: Cut, fp: Any, full: Any, doc_fp: Any) -> bool:
    """Whether the served vectors are the stored document's at the chunk's true position."""
    if cut.start is None or full is None:
        return False
    off = _word_offset(doc_fp, cut.start)
    want = full.vectors[off : off + fp.n_words]
    return want.shape == fp.vectors.shape and bool(np.allclose(want, fp.vectors, atol=1e-6))


def timed_lookups(store: Any, cache_id: str, cuts: Sequence[Cut], hinted: bool,
                  seed: int = 0) -> tuple[list[Any], list[float]]:  # fmt: skip
    """Every chunk looked up in random 10-chunk groups (a warm-up pass, then a timed one);
    the fingerprints in ``cuts`` order and the per-group milliseconds."""
    order = np.random.default_rng(seed).permutation(len(cuts))
    groups = [order[i : i + QUERY] for i in range(0, len(order), QUERY)]
    found: list[Any] = [None] * len(cuts)
    times: list[float] = []
    for timed in (False, True):
        for g in groups:
            texts = [cuts[i].text for i in g]
            sources = [cuts[i].source for i in g] if hinted else None
            t0 = time.perf_counter()
            got = store.lookup(texts, cache_id, sources)
            if timed:
                times.append((time.perf_counter() - t0) * 1e3)
            for i, fp in zip(g, got, strict=True):
                found[int(i)] = fp
    return found, times


def measure_splitter(name: str, size: int, cuts: Sequence[Cut], ctx: dict[str, Any]) -> SplitRow:
    """Served, verified and latency of one splitter's chunks on the documents' store."""
    from semtoken_rag.core.segment import find_words

    store, cache_id, docs, fulls = ctx["store"], ctx["cache_id"], ctx["fps"], ctx["fulls"]
    plain, t_plain = timed_lookups(store, cache_id, cuts, hinted=False)
    hinted, t_hint = timed_lookups(store, cache_id, cuts, hinted=True)
    words = [len(find_words(c.text)) for c in cuts]
    served = [(c, fp, w) for c, fp, w in zip(cuts, plain, words, strict=True) if fp is not None]
    served_words = sum(w for _, _, w in served)

    def aligned(found: Sequence[Any]) -> float | None:
        if fulls is None:
            return None
        ok = sum(
            w
            for c, fp, w in zip(cuts, found, words, strict=True)
            if fp is not None and _aligned(c, fp, fulls.get(c.doc), docs[c.doc])
        )
        return ok / max(1, sum(w for fp, w in zip(found, words, strict=True) if fp is not None))

    p, h = realdocs.percentiles(t_plain), realdocs.percentiles(t_hint)
    return SplitRow(
        splitter=name, size=size, chunks=len(cuts), mean_words=float(np.mean(words or [0])),
        not_substrings=sum(c.start is None for c in cuts),
        bad_start_hints=sum(c.source.start != c.start for c in cuts),
        served=len(served) / max(1, len(cuts)), served_words=served_words / max(1, sum(words)),
        served_hinted=sum(fp is not None for fp in hinted) / max(1, len(cuts)),
        shape_ok=sum(w for _, fp, w in served if fp.n_words == w) / max(1, served_words),
        aligned=aligned(plain), aligned_hinted=aligned(hinted),
        warm_p50_ms=p["p50"], warm_p99_ms=p["p99"], hinted_p50_ms=h["p50"],
        hinted_p99_ms=h["p99"],
    )  # fmt: skip


def full_documents(store: Any, cache_id: str, texts: Sequence[str]) -> dict[int, Any]:
    """Every stored document read back whole, by key (the alignment check's truth)."""
    got = store.lookup(list(texts), cache_id)
    return {i: fp for i, fp in enumerate(got) if fp is not None}


def size_info(stored: dict[str, Any], tokens: int, code_size: int) -> dict[str, Any]:
    """Bytes on disk per 1k encoder tokens, against the previous format's terms."""
    old = stored["words"] * (code_size + 2)
    books = stored["tables"].get("codebooks", 0)
    return {**stored, "tokens": tokens, "bytes_per_1k_tokens": stored["disk"] / tokens * 1e3,
            "old_format_bytes_per_1k_tokens": old / tokens * 1e3,
            "overhead_vs_old": stored["disk"] / old - 1.0,
            "overhead_vs_old_without_codebooks": (stored["disk"] - books) / old - 1.0,
            "words_payload_bytes": stored["payload"] - stored["words"] * code_size}  # fmt: skip


def _tokens(tokenizer: Any, texts: Sequence[str]) -> int:
    ids = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    return sum(len(x) for x in ids)


def _reference(work: Path, docs: Sequence[Any], fps: Sequence[Any], enc: Any, spec: Any,
               info: dict[str, Any]) -> SplitRow:  # fmt: skip
    """``ingest``'s 256-word windows ingested verbatim as documents, looked up by key."""
    from semtoken_rag.store import FingerprintStore

    from semtoken_lab.bench import chunkers

    cuts = chunkers.verbatim()(docs)
    table = {c.text: sliced_fingerprints(c, fps[c.doc]) for c in cuts}
    cached = CachedEncoder(enc.cache_id, enc.dim, table)
    stored = ingest_store(work / "verbatim", [c.text for c in cuts],
                          [docs[c.doc].name for c in cuts], cached, spec)  # fmt: skip
    info["reference_store"] = size_info(stored, _tokens(enc.tokenizer, list(table)), 64)
    with FingerprintStore(work / "verbatim") as store:
        ctx = {"store": store, "cache_id": enc.cache_id, "fps": fps, "fulls": None}
        return measure_splitter("verbatim (ingested chunks)", 256, cuts, ctx)


def run_splitters(
    out: Path,
    *,
    data_root: Path | None = None,
    sources: Sequence[str] = SPLIT_SOURCES,
    per_source: int | None = None,
    quick: bool = False,
    train_min: int | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Ingest the documents, measure every splitter and the reference; ``splitters.json`` /
    ``splitters.md`` in ``out`` (rewritten after each row)."""
    from semtoken_rag.readers import load_reader_tokenizer
    from semtoken_rag.store import FingerprintStore, get_codec

    from semtoken_lab.bench import chunkers

    out.mkdir(parents=True, exist_ok=True)
    docs = realdocs.load_documents(sources, data_root, per_source)
    enc = realdocs.load_encoder()
    texts = [d.text for d in docs]
    fps, encode_s = realdocs.cached_fingerprints(texts, enc, cache or out / "cache")
    spec = get_codec("pq64")
    spec = spec.with_options(train_min=train_min) if train_min else spec
    work = Path(tempfile.mkdtemp(prefix="splitters-", dir=out))
    rows: list[SplitRow] = []
    try:
        cached = CachedEncoder(enc.cache_id, enc.dim, dict(zip(texts, fps, strict=True)))
        stored = ingest_store(work / "docs", texts, [d.name for d in docs], cached, spec)
        info = {"sources": list(sources), "documents": len(docs), "encode_s": encode_s,
                "codec": spec.name, "train_min": spec.train_min,
                "store": size_info(stored, _tokens(enc.tokenizer, texts), 64)}  # fmt: skip
        cutters = chunkers.splitters(load_reader_tokenizer("smollm2"), enc.tokenizer, quick)
        with FingerprintStore(work / "docs") as store:
            ctx = {"store": store, "cache_id": enc.cache_id, "fps": fps,
                   "fulls": full_documents(store, enc.cache_id, texts)}  # fmt: skip
            for (name, size), cut in cutters.items():
                rows.append(measure_splitter(name, size, cut(docs), ctx))
                write_report(out, info, rows)
        rows.append(_reference(work, docs, fps, enc, spec, info))
        write_report(out, info, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"workload": info, "rows": [asdict(r) for r in rows]}


def write_report(out: Path, info: dict[str, Any], rows: Sequence[SplitRow]) -> None:
    """``splitters.json`` and ``splitters.md``."""
    import json

    from semtoken_lab.bench.splitters_report import markdown
    from semtoken_lab.bench.timing import machine_info

    data = {"machine": machine_info(), "workload": info, "rows": [asdict(r) for r in rows]}
    (out / "splitters.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "splitters.md").write_text("\n".join(markdown(info, rows)) + "\n", encoding="utf-8")
