"""One fingerprint store shared by LangChain and LlamaIndex: what one framework fingerprinted
is a cache hit for the other (each adapter has its own engine and its own loaded encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_semtoken")
store_mod = pytest.importorskip("semtoken_rag.store")

from langchain_core.documents import Document as LCDocument  # noqa: E402
from langchain_semtoken import SemTokenCompressor  # noqa: E402
from llama_index.core.ingestion import IngestionPipeline  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from llama_index.postprocessor.semtoken import (  # noqa: E402
    SemTokenFingerprinter,
    SemTokenNodePostprocessor,
)

pytestmark = pytest.mark.slow

N = 12


def _inputs(li_nqa: Any) -> tuple[list[dict[str, Any]], str]:
    chunks, questions = li_nqa
    return chunks[:N], questions[0]["question"]


def test_langchain_then_llama_index_shared_store_object(li_nqa: Any) -> None:
    chunks, query = _inputs(li_nqa)
    store = store_mod.FingerprintStore()  # in memory, one object handed to both adapters
    lc = SemTokenCompressor(compression_ratio=0.5, store=store)
    li = SemTokenNodePostprocessor(compression_ratio=0.5, store=store)

    docs = [LCDocument(id=c["id"], page_content=c["text"]) for c in chunks]
    lc_out = lc.compress_documents(docs, query)
    assert lc.engine.encoder.calls == N

    hits = store.stats().hits
    nodes = [NodeWithScore(node=TextNode(id_=c["id"], text=c["text"]), score=1.0) for c in chunks]
    li_out = li.postprocess_nodes(nodes, query_str=query)
    assert li.engine.encoder is not lc.engine.encoder
    assert li.engine.encoder.calls == 0  # every chunk came from the store
    assert store.stats().hits - hits == N
    # same engine settings, same fingerprints: both frameworks keep the same text
    assert [(d.id, d.page_content, d.metadata["semtoken"]) for d in lc_out] == [
        (n.node.node_id, n.node.get_content(), n.node.metadata["semtoken"]) for n in li_out
    ]


def test_llama_index_ingestion_then_langchain_shared_directory(li_nqa: Any, tmp_path: Path) -> None:
    chunks, query = _inputs(li_nqa)
    store_dir = tmp_path / "fingerprints"
    fingerprinter = SemTokenFingerprinter(store_dir=store_dir)
    nodes = [TextNode(id_=c["id"], text=c["text"]) for c in chunks]
    IngestionPipeline(transformations=[fingerprinter]).run(nodes=nodes)
    assert fingerprinter.engine.encoder.calls == N

    lc = SemTokenCompressor(compression_ratio=0.5, store_dir=store_dir)
    docs = [LCDocument(id=c["id"], page_content=c["text"]) for c in chunks]
    out = lc.compress_documents(docs, query)
    assert out
    assert lc.engine.encoder.calls == 0
    assert lc.engine.store.stats().hits == N
