"""LlamaIndex on Ray, as ``examples/llama_index_ray_ingestion.py`` runs it: ``RayIngestionPipeline``
with our fingerprinter *before* the node splitter (each a ``RayTransformComponent``) stores every
document whole under its ``doc_id``, as the plain ``IngestionPipeline`` in one process does; every
node a splitter then cuts is served to the postprocessor from that store, with no encoder pass.

Real pieces: ``llama-index-ingestion-ray``, ``SemTokenFingerprinter`` and the packaged MiniLM as
``HuggingFaceEmbedding`` (one Ray actor each), ``SentenceSplitter``, ``VectorStoreIndex``, the
``SemTokenNodePostprocessor``, on the session's local Ray of 2 CPUs (the example joins it through
``--address``: a cluster of its own would be a second one on the 2 cores).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ray_helpers import GUARANTEED_WORDS

pytestmark = [pytest.mark.ray, pytest.mark.slow]

pytest.importorskip("llama_index.ingestion.ray")


@pytest.fixture(scope="module")
def documents(shared_data: Path) -> tuple[list[Any], str]:
    """Three NarrativeQA summaries as LlamaIndex Documents, and a question about the first."""
    from llama_index.core import Document

    docs: dict[str, Any] = {}
    question = ""
    with (shared_data / "narrativeqa" / "test.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["document_id"] not in docs:
                question = question or row["question"]
                docs[row["document_id"]] = Document(text=row["context"], id_=row["document_id"])
            if len(docs) == 3:
                break
    return list(docs.values()), question


def test_ray_example_fills_the_store_the_postprocessor_serves_every_node_from(
    ray_local: Any, documents: tuple[list[Any], str], tmp_path: Path
) -> None:
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode, NodeWithScore
    from llama_index.postprocessor.semtoken import (
        SemTokenFingerprinter,
        SemTokenNodePostprocessor,
    )

    from semtoken_rag.core.segment import find_words
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import FingerprintStore
    from tests.conftest import run_example
    from tests.ray_helpers import assert_same_lookups, exact_store, stored_names

    docs, question = documents
    store_dir = exact_store(tmp_path / "fp-ray")  # float32: compared bit for bit below
    proc = run_example(
        "llama_index_ray_ingestion.py", "--docs", str(len(docs)), "--actors", "1",
        "--store-dir", str(store_dir), "--address", ray_local.get_runtime_context().gcs_address,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    cut = re.search(r"(\d+) documents -> (\d+) nodes", proc.stdout)
    assert cut and int(cut[1]) == len(docs) < int(cut[2])  # returned whole, then split
    # Every node the example retrieved and compressed was served from the Ray-filled store.
    assert "encoder runs at query time over retrieved nodes: 0" in proc.stdout

    # The same fingerprinting in this process (plain IngestionPipeline) is the reference.
    local = SemTokenFingerprinter(store_dir=exact_store(tmp_path / "local"))
    nodes = IngestionPipeline(
        transformations=[local, SentenceSplitter(chunk_size=96, chunk_overlap=16)]
    ).run(documents=docs)
    texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
    cache_id = local.engine.encoder.cache_id
    with FingerprintStore(store_dir) as dist:
        assert dist.verify() == []
        assert len(dist) == len(docs)  # the documents, whole: not the nodes
        assert_same_lookups(dist, local.engine.store, [d.text for d in docs], cache_id)
        # Every node long enough to hold a stored shingle is served (identically), also from
        # another splitter than the example's; a shorter one (a document's last sentence) may
        # miss in both stores alike.
        long = [t for t in texts if len(find_words(t)) >= GUARANTEED_WORDS]
        assert len(long) >= len(texts) - len(docs)
        assert_same_lookups(dist, local.engine.store, long, cache_id)
        short = [t for t in texts if t not in long]
        for a, b in zip(dist.lookup(short, cache_id), local.engine.store.lookup(short, cache_id),
                        strict=True):  # fmt: skip
            assert (a is None) == (b is None)
    names = stored_names(store_dir)
    assert names == {fingerprint_key(d.text, cache_id): {d.doc_id} for d in docs}

    post = SemTokenNodePostprocessor(compression_ratio=0.5, store_dir=store_dir)
    retrieved = [n for n, t in zip(nodes, texts, strict=True) if t in long][:6]
    out = post.postprocess_nodes(
        [NodeWithScore(node=n, score=1.0) for n in retrieved], query_str=question
    )
    assert out and all("semtoken" in n.node.metadata for n in out)
    assert post.engine.encoder.calls == 0  # every node came from the Ray-filled store
    stats = post.engine.store.stats()
    assert (stats.hits, stats.misses) == (len(retrieved), 0)
