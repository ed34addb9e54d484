"""LlamaIndex query engine with semtoken-rag compression, fully offline.

HotpotQA paragraphs (distractor setting) from ``../shared/data`` become one ``TextNode`` each
(title in metadata) in a ``VectorStoreIndex`` embedded with the packaged all-MiniLM-L6-v2.
An ``IngestionPipeline`` with :class:`SemTokenFingerprinter` fingerprints every passage into the
postprocessor's store (in memory, or ``--store-dir``), so at query time
:class:`SemTokenNodePostprocessor` never runs the encoder on a passage.  Per
question the script prints the tokens retrieved, kept and saved, then the answer of the local
SmolLM2 reader (``LocalReader(...).as_llama_index_llm()``) or, without one, the compressed
context (a ``MockLLM`` stands in).

Run::

    python examples/llama_index_query_engine.py --questions 5 --ratio 0.5
    python examples/llama_index_query_engine.py --no-reader --store-dir /tmp/semtoken-fp
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

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hotpotqa_dev_sample"


def load_corpus(path: Path, n_rows: int, n_questions: int) -> tuple[list[Any], list[dict]]:
    """One node per distinct paragraph (``paragraphs``: ``[{"title", "text"}]``) of the first
    ``n_rows`` HotpotQA examples (10 paragraphs each: gold and distractors)."""
    from llama_index.core.schema import TextNode

    with (path / "dev.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()][:n_rows]
    nodes: dict[tuple[str, str], Any] = {}
    for row in rows:
        for i, para in enumerate(row["paragraphs"]):
            key = (para["title"], para["text"])
            if para["text"].strip() and key not in nodes:
                nodes[key] = TextNode(
                    id_=f"{row['id']}-{i}", text=para["text"], metadata={"title": para["title"]}
                )
    return list(nodes.values()), rows[:n_questions]


def load_llm(enabled: bool) -> tuple[Any, bool]:
    """``(llm, real)``: the local reader as a LlamaIndex LLM, else a ``MockLLM``."""
    from llama_index.core.llms import MockLLM

    if enabled:
        try:
            from semtoken_lab.reader import LocalReader

            return LocalReader().as_llama_index_llm(), True
        except (ImportError, AttributeError, NotImplementedError, OSError, ValueError) as exc:
            print(f"[no local reader: {exc}] printing the compressed context instead")
    return MockLLM(max_tokens=1), False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rows", type=int, default=25, help="examples whose passages to index")
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--k", type=int, default=6, help="passages retrieved per question")
    parser.add_argument("--ratio", type=float, default=0.5, help="fraction of tokens kept")
    parser.add_argument(
        "--store-dir", type=Path, default=None, help="persistent fingerprints (default: in memory)"
    )
    parser.add_argument("--no-reader", action="store_true", help="skip the local LLM")
    args = parser.parse_args()
    if not (args.data / "dev.jsonl").is_file():
        print(f"{args.data} not found: this example reads ../shared/data beside the repository")
        return 1

    from llama_index.core import VectorStoreIndex
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.postprocessor.semtoken import SemTokenNodePostprocessor

    from semtoken_rag.models import packaged_encoder_dir
    from semtoken_rag.store import FingerprintStore

    nodes, rows = load_corpus(args.data, args.rows, args.questions)
    llm, real_llm = load_llm(not args.no_reader)
    postprocessor = SemTokenNodePostprocessor(
        compression_ratio=args.ratio,
        count_tokenizer="smollm2" if real_llm else None,  # budget in the reader's tokens
        store_dir=args.store_dir,
        store=None if args.store_dir else FingerprintStore(None),  # ingestion needs a store
    )

    t0 = time.perf_counter()
    # ingestion: fingerprints into the postprocessor's store (same engine, one model)
    nodes = IngestionPipeline(transformations=[postprocessor.fingerprinter()]).run(nodes=nodes)
    t1 = time.perf_counter()
    embed_model = HuggingFaceEmbedding(model_name=str(packaged_encoder_dir()))
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    print(
        f"{len(nodes)} passages: fingerprinted in {t1 - t0:.1f} s, "
        f"embedded in {time.perf_counter() - t1:.1f} s"
    )

    retriever = index.as_retriever(similarity_top_k=args.k)
    query_engine = index.as_query_engine(
        llm=llm, similarity_top_k=args.k, node_postprocessors=[postprocessor]
    )
    count = postprocessor.engine.count_tokens
    total_in = total_kept = 0
    for row in rows:
        question = row["question"]
        retrieved = retriever.retrieve(question)
        calls = postprocessor.engine.encoder.calls
        t2 = time.perf_counter()
        response = query_engine.query(question)
        seconds = time.perf_counter() - t2
        kept = response.source_nodes
        n_in = sum(count(n.node.get_content(MetadataMode.NONE)) for n in retrieved)
        n_kept = sum(n.node.metadata["semtoken"]["kept_tokens"] for n in kept)
        total_in, total_kept = total_in + n_in, total_kept + n_kept
        print(f"\nQ: {question}")
        print(
            f"   {len(retrieved)} passages, {n_in} tokens -> {len(kept)} passages, {n_kept} "
            f"tokens (saved {n_in - n_kept}, {1 - n_kept / max(n_in, 1):.0%}); "
            f"encoder runs at query time: {postprocessor.engine.encoder.calls - calls}; "
            f"{seconds:.1f} s"
        )
        for n in kept:
            print(f"   [{n.node.node_id} score={n.score:.3f}] {n.node.get_content()[:120]!r}")
        if real_llm:
            print(f"   answer: {str(response).strip()!r}   gold: {row['answers']}")
        else:
            print(f"   gold: {row['answers']}")
    print(
        f"\ntotal: {total_in} -> {total_kept} tokens "
        f"(saved {total_in - total_kept}, {1 - total_kept / max(total_in, 1):.0%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
