"""The codec training corpus, and training a store's codec on it.

A trained codec (``CodecSpec.trained``) learns its parameters from the first words a store
ingests, so they come from a corpus disjoint from every measured or evaluated document: the
Paul Graham essays of ``shared/data/needle_haystack``.  Shared by the store benchmark
(:mod:`semtoken_lab.bench.store`) and the evaluation's trained stores
(:mod:`semtoken_lab.eval.store_methods`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semtoken_lab.bench.cases import DEFAULT_DATA

#: Training corpus of trained codecs, relative to the data root (disjoint from the eval sets).
TRAIN_CORPUS = "needle_haystack/essays.jsonl"


def training_chunks(root: Path | None = None) -> list[str]:
    """Chunks (120 words, overlap 20) of the codec's training corpus, in file order.

    Raises:
        InvalidInputError: the corpus is missing.
    """
    from semtoken_rag.errors import InvalidInputError
    from semtoken_rag.ingestion.chunking import chunk_words

    path = (root or DEFAULT_DATA) / TRAIN_CORPUS
    if not path.is_file():
        raise InvalidInputError(f"the codec training corpus {path} is missing")
    chunks: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                chunks.extend(chunk_words(json.loads(line)["text"], 120, 20))
    return chunks


def train_store(store: Any, encoder: Any, chunks: Sequence[str], batch: int = 64) -> int:
    """Ingest ``chunks`` (each a short document) into ``store`` until its codec is trained;
    returns chunks ingested.

    Raises:
        InvalidInputError: the chunks hold too few words to train the codec.
    """
    from semtoken_rag.errors import InvalidInputError
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, ingest

    runner = LocalRunner(encoder)
    options = IngestOptions(batch_size=batch, progress=False)
    done = 0
    while not store.stats().trained and done < len(chunks):
        ingest(list(chunks[done : done + batch]), store, runner, options)
        done += batch
    if not store.stats().trained:
        raise InvalidInputError(f"too few training words for codec {store.codec.name!r}")
    return min(done, len(chunks))


def chunks_for_words(chunks: list[str], words: int) -> list[str]:
    """The first chunks holding at least ``words`` words (plus a 20% margin)."""
    from semtoken_rag.core.segment import find_words

    out, total = [], 0
    for c in chunks:
        out.append(c)
        total += len(find_words(c))
        if total >= words * 1.2:
            break
    return out
