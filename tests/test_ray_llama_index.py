"""LlamaIndex on Ray: ``RayIngestionPipeline`` with the node splitter and our fingerprinter as
``RayTransformComponent``s fills the store the postprocessor reads.

Real pieces: ``llama-index-ingestion-ray``, ``SentenceSplitter``, ``SemTokenFingerprinter``
(unchanged; two Ray actors, each with its own MiniLM, writing one store directory), the
``SemTokenNodePostprocessor`` and a local Ray of 2 CPUs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ray_helpers import start_local_ray

pytestmark = [pytest.mark.ray, pytest.mark.slow]

pytest.importorskip("llama_index.ingestion.ray")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    yield from start_local_ray()


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

    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import FingerprintStore
    from tests.ray_helpers import assert_same_fingerprints, exact_store

    docs, question = documents
    store_dir = exact_store(tmp_path / "fp")
    pipeline = RayIngestionPipeline(
        transformations=[
            RayTransformComponent(
                transform_class=SentenceSplitter,
                chunk_size=96,
                chunk_overlap=16,
                map_batches_kwargs={"batch_size": 1},
            ),
            RayTransformComponent(
                transform_class=SemTokenFingerprinter,
                store_dir=str(store_dir),
                map_batches_kwargs={
                    "batch_size": 4,
                    "compute": ray_local.data.ActorPoolStrategy(size=2),
                },
            ),
        ]
    )
    nodes = pipeline.run(documents=docs)
    texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
    assert len(nodes) > len(docs)  # split, and returned unchanged by the fingerprinter

    # The same nodes fingerprinted in this process by the plain IngestionPipeline.
    local = SemTokenFingerprinter(store_dir=exact_store(tmp_path / "local"))
    IngestionPipeline(transformations=[local]).run(nodes=nodes)
    cache_id = local.engine.encoder.cache_id
    with FingerprintStore(store_dir) as dist:
        assert dist.verify() == []
        assert len(dist) == len(set(texts))
        keys = [fingerprint_key(t, cache_id) for t in texts]
        assert_same_fingerprints(dist, local.engine.store, keys)

    post = SemTokenNodePostprocessor(compression_ratio=0.5, store_dir=store_dir)
    out = post.postprocess_nodes(
        [NodeWithScore(node=n, score=1.0) for n in nodes[:6]], query_str=question
    )
    assert out and all("semtoken" in n.node.metadata for n in out)
    assert post.engine.encoder.calls == 0  # every node came from the Ray-filled store
