"""LlamaIndex on Ray: ``RayIngestionPipeline`` with our fingerprinter *before* the node splitter
(both as ``RayTransformComponent``s) stores every document whole under its ``doc_id``; every
node the splitter then cuts is served to the postprocessor from that store, with no encoder pass.

Real pieces: ``llama-index-ingestion-ray``, ``SemTokenFingerprinter`` (two Ray actors, each with
its own MiniLM, writing one store directory), ``SentenceSplitter``, the
``SemTokenNodePostprocessor`` and a local Ray of 2 CPUs.
"""

from __future__ import annotations

import json
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


def test_ray_ingestion_pipeline_fills_the_postprocessor_store(
    ray_local: Any, documents: tuple[list[Any], str], tmp_path: Path
) -> None:
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode, NodeWithScore
    from llama_index.ingestion.ray import RayIngestionPipeline, RayTransformComponent
    from llama_index.postprocessor.semtoken import (
        SemTokenFingerprinter,
        SemTokenNodePostprocessor,
    )

    from semtoken_rag.core.segment import find_words
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import FingerprintStore
    from tests.ray_helpers import assert_same_lookups, exact_store, stored_names

    docs, question = documents
    store_dir = exact_store(tmp_path / "fp")
    splitter = {"chunk_size": 96, "chunk_overlap": 16}
    pipeline = RayIngestionPipeline(
        transformations=[
            RayTransformComponent(
                transform_class=SemTokenFingerprinter,
                store_dir=str(store_dir),
                map_batches_kwargs={
                    "batch_size": 1,
                    "compute": ray_local.data.ActorPoolStrategy(size=2),
                },
            ),
            RayTransformComponent(
                transform_class=SentenceSplitter,
                map_batches_kwargs={"batch_size": 1},
                **splitter,
            ),
        ]
    )
    nodes = pipeline.run(documents=docs)
    texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
    assert len(nodes) > len(docs)  # returned unchanged by the fingerprinter, then split
    assert {n.ref_doc_id for n in nodes} == {d.doc_id for d in docs}

    # The same pipeline in this process (plain IngestionPipeline) is the reference.
    local = SemTokenFingerprinter(store_dir=exact_store(tmp_path / "local"))
    local_nodes = IngestionPipeline(transformations=[local, SentenceSplitter(**splitter)]).run(
        documents=docs
    )
    assert sorted(texts) == sorted(n.get_content(metadata_mode=MetadataMode.NONE)
                                   for n in local_nodes)  # fmt: skip
    cache_id = local.engine.encoder.cache_id
    with FingerprintStore(store_dir) as dist:
        assert dist.verify() == []
        assert len(dist) == len(docs)  # the documents, whole: not the nodes
        assert_same_lookups(dist, local.engine.store, [d.text for d in docs], cache_id)
        # Every node long enough to hold a stored shingle is served (identically); a shorter
        # one (a document's last sentence) may miss in both stores alike.
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
