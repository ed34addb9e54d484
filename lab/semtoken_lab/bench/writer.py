"""Writer breakdown (issue 25 point 2): where an insert's time goes, against the raw PQ encode.

On real MiniLM fingerprints of real documents (encoded once, cached as ``.npy``), in one run:

* **raw encode** of all the vectors: FAISS ``sa_encode`` and, for 8-bit PQ, the library's BLAS
  assignment (``FaissCodec.encode`` -> ``pq_assign``); the faster is the reference;
* **guard**: the fidelity guard's cosines (``code_vectors`` minus the faster raw encode);
* **build**: the rest of ``encode_documents`` (NFKC words, packing, shingles + winnowing,
  checksums), each part also timed on its own with the library's functions;
* **write**: ``FingerprintStore.write`` in batches (ingestion's 64) into a copy of a store
  whose codec is trained;
* **insert** = ``encode_documents`` + write as measured (not the sum of the parts), single
  process: words/s and the raw encode's time over it (target >= 0.8, i.e. everything but the
  encode under 25% of the encode).

For ``pq64`` and ``pq128x4`` (4-bit PQ: FAISS's path), with the mean cosine of decoded vs
original vectors and the bytes per word, on whole documents and on 256-word chunks of them.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench import realdocs

#: Documents of the benchmark (the splitters benchmark uses the same ones: one cache).
WRITER_SOURCES = ("narrativeqa", "gov_report", "meeting", "essays")
CODECS = ("pq64", "pq128x4")


@dataclass
class WriterRow:
    """One codec on one unit (seconds are medians over the repeats)."""

    codec: str
    unit: str
    documents: int
    words: int
    raw_faiss_s: float
    raw_blas_s: float | None
    guard_s: float
    build_s: float
    encode_documents_s: float
    write_s: float
    build_parts_s: dict[str, float]
    mean_cos: float
    train_cos: float
    code_bytes_per_word: float
    payload_bytes_per_word: float
    disk_bytes_per_word: float
    codes_agree: float | None = None
    shares: dict[str, float] = field(default_factory=dict)

    @property
    def raw_s(self) -> float:
        """The faster raw encode."""
        return min(x for x in (self.raw_faiss_s, self.raw_blas_s) if x is not None)

    def finish(self) -> WriterRow:
        """Fill the shares of the raw encode and the insert ratio."""
        raw = max(self.raw_s, 1e-12)
        insert = self.encode_documents_s + self.write_s
        self.shares = {
            "guard": self.guard_s / raw,
            "build": self.build_s / raw,
            "write": self.write_s / raw,
            "insert_words_per_s": self.words / insert,
            "raw_words_per_s": self.words / raw,
            "insert_over_raw": raw / insert,
        }
        return self


def interleaved_medians(stages: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall seconds of each stage, the stages run in turn within each repeat (a shared
    machine's load drifts: every stage then sees the same drift)."""
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(max(1, repeats)):
        for name, fn in stages.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def chunk_units(docs: Sequence[Any], encoder_id: str, words: int = 256) -> list[Any]:
    """Non-overlapping ``words``-word chunks of documents (same vectors, same total words)."""
    from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
    from semtoken_rag.store import DocumentFingerprints

    out = []
    for d in docs:
        fp = d.fingerprints
        for lo in range(0, fp.n_words, words):
            spans = fp.word_spans[lo : lo + words]
            a, b = int(spans[0, 0]), int(spans[-1, 1])
            text = d.text[a:b]
            out.append(DocumentFingerprints(fingerprint_key(text, encoder_id), text,
                                            ChunkFingerprints(fp.vectors[lo : lo + words],
                                                              spans - a)))  # fmt: skip
    return out


def build_parts(docs: Sequence[Any], codecs: Any, codes: np.ndarray) -> dict[str, float]:
    """Seconds of each part of building the documents, with the library's own functions."""
    from semtoken_rag.store.db import BLOCK_WORDS
    from semtoken_rag.store.encoding import block_checksum
    from semtoken_rag.store.words import normalise, pack, shingle_hashes, winnow

    t = time.perf_counter
    parts = dict.fromkeys(("words", "pack", "shingles", "checksums"), 0.0)
    lo = 0
    for d in docs:
        fp = d.fingerprints
        t0 = t()
        words = normalise([d.text[s:e] for s, e in fp.word_spans.tolist()])
        t1 = t()
        packed = [pack(words[i : i + BLOCK_WORDS]) for i in range(0, len(words), BLOCK_WORDS)]
        t2 = t()
        winnow(shingle_hashes(words))
        t3 = t()
        for j, p in enumerate(packed):
            a = lo + j * BLOCK_WORDS
            block = codes[a : min(a + BLOCK_WORDS, lo + fp.n_words)].tobytes()
            block_checksum(d.key, j, len(block), fp.dim, codecs.book.sha256, block, p)
        t4 = t()
        for name, s in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name] += s
        lo += fp.n_words
    return parts


def trained_template(
    folder: Path, codec: Any, docs: Sequence[Any], encoder_id: str, words: int
) -> tuple[Path, Any, int]:
    """A store of ``codec`` trained on the leading documents holding ``words`` words (the same
    sample for every codec); ``(path, CodecSet, n_train)``."""
    from semtoken_rag.store import FingerprintStore

    path = folder / f"template-{codec.name}"
    shutil.rmtree(path, ignore_errors=True)
    with FingerprintStore(path, codec=codec) as store:
        n_train, _ = realdocs.train_store(store, docs, encoder_id, words)
        codecs = store.codec_set(docs[0].fingerprints.dim)
    return path, codecs, n_train


def timed_write(template: Path, target: Path, encoded: Sequence[Any], batch: int) -> dict[str, Any]:
    """``store.write`` of the encoded documents in batches into a copy of ``template``."""
    from semtoken_rag.store import FingerprintStore

    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target)
    disk0 = realdocs.dir_bytes(target)
    with FingerprintStore(target) as store:
        before = store.stats()
        t0 = time.perf_counter()
        for lo in range(0, len(encoded), batch):
            store.write(encoded[lo : lo + batch])
        seconds = time.perf_counter() - t0
        stats = store.stats()
    out = {"seconds": seconds, "payload": stats.payload_bytes - before.payload_bytes,
           "staged": stats.staged_words, "disk": realdocs.dir_bytes(target) - disk0}  # fmt: skip
    shutil.rmtree(target, ignore_errors=True)
    return out


def encode_stages(codec: Any, codecs: Any, vectors: np.ndarray, docs: Sequence[Any],
                  encoder: str) -> dict[str, Callable[[], object]]:  # fmt: skip
    """The timed stages: raw FAISS (and, 8-bit PQ, BLAS) encodes, ``code_vectors`` (encode +
    the guard's cosines) and the whole ``encode_documents``."""
    from semtoken_rag.store import encode_documents
    from semtoken_rag.store.codecs import _BATCH
    from semtoken_rag.store.encoding import code_vectors

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    stages: dict[str, Callable[[], object]] = {
        "faiss": lambda: np.concatenate([codec.index.sa_encode(x[lo : lo + _BATCH])
                                         for lo in range(0, len(x), _BATCH)]),
    }  # fmt: skip
    if codec._pq is not None:  # the library encodes 8-bit PQ with pq_assign
        stages["blas"] = lambda: codec.encode(x)
    stages["coded"] = lambda: code_vectors(x, codecs)
    stages["total"] = lambda: encode_documents(docs, codecs, encoder=encoder)
    return stages


def _agreement(codec: Any, codes: np.ndarray, vectors: np.ndarray) -> float:
    """Share of the BLAS assignment's code bytes equal to ``sa_encode``'s."""
    from semtoken_rag.store.codecs import _BATCH

    faiss_codes = [codec.index.sa_encode(vectors[lo : lo + _BATCH])
                   for lo in range(0, len(vectors), _BATCH)]  # fmt: skip
    return float(np.mean(codes == np.concatenate(faiss_codes)))


def measure_codec(
    name: str, unit: str, docs: Sequence[Any], template: tuple[Path, Any, int], opts: dict[str, Any]
) -> WriterRow:
    """Every stage of one codec on one unit (documents or chunks) of ``docs``."""
    from semtoken_rag.store import encode_documents
    from semtoken_rag.store.codebooks import runtime_codec
    from semtoken_rag.store.codecs import row_cosines

    path, codecs, _ = template
    codec: Any = runtime_codec(codecs.book)
    enc_id = str(opts["encoder"])
    vectors = np.concatenate([d.fingerprints.vectors for d in docs]).astype(np.float32)
    codes = codec.encode(vectors)
    t = interleaved_medians(encode_stages(codec, codecs, vectors, docs, enc_id), opts["repeats"])
    encoded = encode_documents(docs, codecs, encoder=enc_id)
    wrote = timed_write(path, Path(opts["work"]) / "write", encoded, int(opts["batch"]))
    n = len(vectors)
    raw = min(t["faiss"], t.get("blas", t["faiss"]))
    guard = max(0.0, t["coded"] - raw) if codecs.guard else 0.0
    agree = _agreement(codec, codes, vectors) if "blas" in t else None
    return WriterRow(
        codec=name, unit=unit, documents=len(docs), words=n, raw_faiss_s=t["faiss"],
        raw_blas_s=t.get("blas"), guard_s=guard,
        build_s=max(0.0, t["total"] - t["coded"]), encode_documents_s=t["total"],
        write_s=wrote["seconds"], build_parts_s=build_parts(docs, codecs, codes),
        mean_cos=float(row_cosines(codec.decode(codes), vectors).mean()),
        train_cos=codecs.book.train_cos,
        code_bytes_per_word=float(codec.code_size), payload_bytes_per_word=wrote["payload"] / n,
        disk_bytes_per_word=wrote["disk"] / n, codes_agree=agree,
    ).finish()  # fmt: skip


def _templates(
    work: Path, names: Sequence[str], docs: Sequence[Any], encoder_id: str, train_min: int | None
) -> dict[str, tuple[Path, Any, int]]:
    from semtoken_rag.store import get_codec

    specs = [get_codec(name) for name in names]
    specs = [s.with_options(train_min=train_min) if train_min and s.trained else s for s in specs]
    words = max(s.train_min for s in specs)
    return {s.name: trained_template(work, s, docs, encoder_id, words) for s in specs}


def run_writer(
    out: Path,
    *,
    data_root: Path | None = None,
    sources: Sequence[str] = WRITER_SOURCES,
    per_source: int | None = None,
    codecs: Sequence[str] = CODECS,
    units: Sequence[str] = ("document", "chunk256"),
    repeats: int = 3,
    batch: int = 64,
    train_min: int | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Measure every codec on every unit; write ``writer.json`` / ``writer.md`` into ``out``.

    The leading documents train every codec (one sample, as ingestion's sample batch holding
    the largest ``train_min``) and are left out of the measurement.
    """
    import tempfile

    out.mkdir(parents=True, exist_ok=True)
    raw_docs = realdocs.load_documents(sources, data_root, per_source)
    enc = realdocs.load_encoder()
    texts = [d.text for d in raw_docs]
    fps, encode_s = realdocs.cached_fingerprints(texts, enc, cache or out / "cache")
    docs = realdocs.document_fingerprints(texts, fps, enc.cache_id, [d.name for d in raw_docs])
    work = Path(tempfile.mkdtemp(prefix="writer-", dir=out))
    try:
        templates = _templates(work, codecs, docs, enc.cache_id, train_min)
        rest = docs[max(t[2] for t in templates.values()) :]
        info = {"sources": list(sources), "documents": len(docs), "measured_documents": len(rest),
                "train_documents": {k: v[2] for k, v in templates.items()},
                "encode_s": encode_s, "encoder": enc.cache_id, "batch": batch,
                "repeats": repeats}  # fmt: skip
        opts = {"repeats": repeats, "encoder": enc.cache_id, "work": str(work), "batch": batch}
        rows: list[WriterRow] = []
        for unit in units:
            unit_docs = rest if unit == "document" else chunk_units(rest, enc.cache_id)
            for name in codecs:
                rows.append(measure_codec(name, unit, unit_docs, templates[name], opts))
                write_report(out, info, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"workload": info, "rows": [asdict(r) for r in rows]}


def write_report(out: Path, info: dict[str, Any], rows: Sequence[WriterRow]) -> None:
    """``writer.json`` and ``writer.md``."""
    import json

    from semtoken_lab.bench.timing import machine_info

    data = {"machine": machine_info(), "workload": info, "rows": [asdict(r) for r in rows]}
    (out / "writer.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "writer.md").write_text("\n".join(markdown(info, rows)) + "\n", encoding="utf-8")


def markdown(info: dict[str, Any], rows: Sequence[WriterRow]) -> list[str]:
    """The breakdown table and the build parts."""
    lines = [
        f"Workload: {info['measured_documents']} real documents ({', '.join(info['sources'])}) "
        f"after {max(info['train_documents'].values())} that trained the codecs; real MiniLM "
        f"fingerprints; medians of {info['repeats']}; write batches of {info['batch']}. "
        "Shares are of the faster raw encode; insert = encode_documents + write (measured); "
        "target raw / insert >= 0.8.",
        "",
        "| codec | unit | words | raw FAISS s | raw BLAS s | guard s (x raw) | build s (x raw) | "
        "encode_documents s | write s (x raw) | insert words/s | raw words/s | raw / insert | "
        "mean cos | payload B/word | disk B/word |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s = r.shares
        blas = "-" if r.raw_blas_s is None else f"{r.raw_blas_s:.2f}"
        lines.append(
            f"| {r.codec} | {r.unit} | {r.words:,} | {r.raw_faiss_s:.2f} | {blas} | "
            f"{r.guard_s:.2f} ({s['guard']:.2f}) | {r.build_s:.2f} ({s['build']:.2f}) | "
            f"{r.encode_documents_s:.2f} | {r.write_s:.2f} ({s['write']:.2f}) | "
            f"{s['insert_words_per_s']:,.0f} | "
            f"{s['raw_words_per_s']:,.0f} | **{s['insert_over_raw']:.2f}** | {r.mean_cos:.4f} | "
            f"{r.payload_bytes_per_word:.1f} | {r.disk_bytes_per_word:.1f} |"
        )
    lines += ["", "Build parts (library functions timed on their own), seconds:", "",
              "| codec | unit | words (NFKC) | pack (zlib) | shingles + winnow | checksums |",
              "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        p = r.build_parts_s
        lines.append(f"| {r.codec} | {r.unit} | {p['words']:.3f} | {p['pack']:.3f} | "
                     f"{p['shingles']:.3f} | {p['checksums']:.3f} |")  # fmt: skip
    return lines
