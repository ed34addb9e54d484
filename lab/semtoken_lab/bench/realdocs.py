"""Real documents for the store benchmarks: texts from ``shared/data``, their real MiniLM word
fingerprints (encoded once, cached as ``.npy``), and a store whose codec is trained on them.

Why a cache: the benchmarks of the writer, the splitters and the store at scale time what
happens *after* the encoder; encoding a few hundred thousand words on a CPU takes minutes, so
the fingerprints are computed once per (texts, encoder) and reused by every later run that is
given the same cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.cases import DEFAULT_DATA

logger = logging.getLogger(__name__)

#: Named sources: (file under the data root, text field).
SOURCES: dict[str, tuple[str, str]] = {
    "narrativeqa": ("narrativeqa/test.jsonl", "context"),
    "hotpotqa": ("hotpotqa_dev_sample/dev.jsonl", "context"),
    "scientific_qa": ("leval/scientific_qa.jsonl", "context"),
    "gov_report": ("leval/gov_report_summ.jsonl", "context"),
    "meeting": ("leval/meeting_summ.jsonl", "context"),
    "legal": ("leval/legal_contract_qa.jsonl", "context"),
    "natural_question": ("leval/natural_question.jsonl", "context"),
    "coursera": ("leval/coursera.jsonl", "context"),
    "quality": ("quality/test.jsonl", "context"),
    "loogle": ("loogle/longdep_qa.jsonl", "context"),
    "essays": ("needle_haystack/essays.jsonl", "text"),
}


@dataclass(frozen=True)
class RealDoc:
    """A distinct document: a name (``source/index``) and its text."""

    name: str
    text: str


def _texts(path: Path, field: str) -> Iterator[str]:
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            text = (json.loads(line).get(field) or "") if line.strip() else ""
            if text.strip() and text not in seen:
                seen.add(text)
                yield text


def load_documents(
    sources: Sequence[str], root: Path | None = None, per_source: int | None = None
) -> list[RealDoc]:
    """Distinct documents of the named sources (missing files are skipped), in file order.

    Args:
        sources: Keys of :data:`SOURCES`.
        root: Data root (default ``../shared/data``).
        per_source: At most this many documents from each source.
    """
    base = Path(root) if root is not None else DEFAULT_DATA
    out: list[RealDoc] = []
    for name in sources:
        rel, field = SOURCES[name]
        if not (base / rel).is_file():
            logger.warning("benchmark source %s missing under %s", rel, base)
            continue
        for i, text in enumerate(_texts(base / rel, field)):
            if per_source is not None and i >= per_source:
                break
            out.append(RealDoc(f"{name}/{i}", text))
    return out


def chunk_documents(docs: Sequence[RealDoc], words: int = 256, overlap: int = 32) -> list[str]:
    """Distinct chunks of the documents cut like ``semtoken-rag ingest`` cuts them."""
    from semtoken_rag.ingestion.chunking import chunk_words

    return list(dict.fromkeys(c for d in docs for c in chunk_words(d.text, words, overlap)))


def load_encoder() -> Any:
    """The packaged MiniLM (``TransformerEncoder`` of the default config)."""
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.encoder import TransformerEncoder

    return TransformerEncoder.from_config(SemTokenConfig())


def _digest(texts: Sequence[str], cache_id: str) -> str:
    h = hashlib.sha256(cache_id.encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest())
    return h.hexdigest()[:20]


def cached_fingerprints(
    texts: Sequence[str], encoder: Any, folder: Path, batch: int = 16
) -> tuple[list[Any], float]:
    """Real fingerprints of ``texts`` (``ChunkFingerprints`` each), from ``folder`` when
    cached there for these texts and this encoder, else encoded (and cached).

    Returns:
        ``(fingerprints, encode_seconds)`` (0 when read from the cache).
    """
    from semtoken_rag.fingerprints import ChunkFingerprints

    stem = folder / f"fingerprints-{_digest(texts, encoder.cache_id)}"
    files = [stem.with_suffix(f".{part}.npy") for part in ("vectors", "spans", "counts")]
    seconds = 0.0
    if not all(f.is_file() for f in files):
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        fps = [fp for lo in range(0, len(texts), batch)
               for fp in encoder.encode_texts(list(texts[lo : lo + batch]))]  # fmt: skip
        seconds = time.perf_counter() - t0
        for f, arr in zip(files, _stack(fps), strict=True):
            np.save(f, arr)
    vectors, spans, counts = (np.load(f) for f in files)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [
        ChunkFingerprints(vectors[a:b], spans[a:b])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)
    ], seconds


def _stack(fps: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dim = fps[0].dim if fps else 0
    vectors = np.concatenate([f.vectors for f in fps]) if fps else np.zeros((0, dim), np.float32)
    spans = np.concatenate([f.word_spans for f in fps]) if fps else np.zeros((0, 2), np.int64)
    return vectors.astype(np.float32), spans.astype(np.int64), np.array([f.n_words for f in fps])


def document_fingerprints(
    texts: Sequence[str], fps: Sequence[Any], cache_id: str, names: Sequence[str] = ()
) -> list[Any]:
    """``DocumentFingerprints`` (what ``encode_documents`` takes) of texts and fingerprints."""
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import DocumentFingerprints

    return [
        DocumentFingerprints(fingerprint_key(t, cache_id), t, fp,
                             (names[i],) if i < len(names) else ())
        for i, (t, fp) in enumerate(zip(texts, fps, strict=True))
    ]  # fmt: skip


def train_store(
    store: Any, docs: Sequence[Any], encoder_id: str, words: int | None = None
) -> tuple[int, float]:
    """Write the leading documents holding the codec's ``train_min`` words (or ``words``, if
    more: codecs compared on one sample) in one batch, staged in float16 as ingestion's sample
    batch; that write trains the store's codec (on all of them, up to ``train_max``).

    Returns:
        ``(documents written, seconds)``; ``(0, 0.0)`` for a raw codec.
    """
    from semtoken_rag.store import encode_documents

    spec = store.codec
    if not spec.trained:
        return 0, 0.0
    need = max(spec.train_min, words or 0)
    total = cut = 0
    while cut < len(docs) and total < need:
        total += docs[cut].fingerprints.n_words
        cut += 1
    if total < spec.train_min:
        raise ValueError(f"{total} words cannot train {spec.name} (train_min {spec.train_min})")
    t0 = time.perf_counter()
    dim = docs[0].fingerprints.dim
    store.write(encode_documents(docs[:cut], store.codec_set(dim), encoder=encoder_id))
    if not store.stats().trained:
        raise RuntimeError(f"the store's {spec.name} codec did not train")
    return cut, time.perf_counter() - t0


def rss_mib() -> float:
    """Peak RSS of this process image (``VmHWM``; ``ru_maxrss`` would count the parent's pages
    a child held between fork and exec)."""
    import resource

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_bytes(path: Path) -> int:
    """Bytes of every file of a directory (not recursive)."""
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def table_bytes(db_file: Path) -> dict[str, int]:
    """Bytes of pages per table and index of an SQLite file (``dbstat``; {} where SQLite was
    built without it), read-only."""
    import sqlite3

    conn = sqlite3.connect(db_file.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        return {str(name): int(size) for name, size in rows}
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    """``{"p50", "p99"}`` of latencies (NaN when empty)."""
    if not ms:
        return {"p50": float("nan"), "p99": float("nan")}
    arr = np.asarray(ms, dtype=np.float64)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99))}
