"""LangChain retrieval chain with semtoken-rag compression, fully offline.

NarrativeQA summaries from ``../shared/data`` are cut into ~60-word chunks, embedded with the
packaged all-MiniLM-L6-v2 into an ``InMemoryVectorStore``; a ``ContextualCompressionRetriever``
wraps the retriever with :class:`langchain_semtoken.SemTokenCompressor`.  For every question the
script prints the tokens retrieved, kept and saved, then the answer of the local SmolLM2 reader
(``semtoken_lab.reader.LocalReader``) or, without a reader, the compressed context.

Run::

    python examples/langchain_retrieval_chain.py --questions 5 --ratio 0.5
    python examples/langchain_retrieval_chain.py --no-reader --store-dir /tmp/semtoken-fp
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

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "narrativeqa" / "test.jsonl"


def load_corpus(path: Path, n_docs: int, window: int = 60) -> tuple[list[Any], list[dict]]:
    """LangChain ``Document`` chunks (~``window`` words) and one question per summary."""
    from langchain_core.documents import Document

    rows: dict[str, dict] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["document_id"] not in rows:
                if len(rows) == n_docs:
                    break
                rows[row["document_id"]] = row
    docs = []
    for doc_id, row in rows.items():
        words = row["context"].split()
        for w, start in enumerate(range(0, len(words), window)):
            docs.append(
                Document(
                    id=f"{doc_id[:12]}-{w:03d}",
                    page_content=" ".join(words[start : start + window]),
                    metadata={"title": row.get("title", ""), "window": w},
                )
            )
    return docs, list(rows.values())


def load_reader(enabled: bool) -> Any:
    """The local reader, or ``None`` (not installed yet, no model, or ``--no-reader``)."""
    if not enabled:
        return None
    try:
        from semtoken_lab.reader import LocalReader

        return LocalReader()
    except (ImportError, OSError, ValueError) as exc:  # ModelNotFoundError is an OSError
        print(f"[no reader: {exc}] printing the compressed context instead")
        return None


def answer_step(reader: Any) -> Any:
    """The last step of the chain: the reader as a LangChain model if it offers one, else a
    ``RunnableLambda`` over ``LocalReader.answer`` (same reader, its own prompt template)."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda

    try:
        llm = reader.as_langchain_llm()
    except (ImportError, AttributeError, NotImplementedError):
        return RunnableLambda(lambda x: reader.answer(x["question"], x["context"]).text)
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer the question from the context in a few words."),
            ("human", "Context:\n{context}\n\nQuestion: {question}"),
        ]
    )
    return prompt | llm | StrOutputParser()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--docs", type=int, default=25, help="summaries to index")
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--k", type=int, default=6, help="chunks retrieved per question")
    parser.add_argument("--ratio", type=float, default=0.5, help="fraction of tokens kept")
    parser.add_argument("--store-dir", type=Path, default=None, help="persistent fingerprints")
    parser.add_argument("--no-reader", action="store_true", help="skip the local LLM")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data} not found: this example reads ../shared/data beside the repository")
        return 1

    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.runnables import RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_semtoken import SemTokenCompressor

    from semtoken_rag.models import packaged_encoder_dir

    docs, rows = load_corpus(args.data, args.docs)
    t0 = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=str(packaged_encoder_dir()))
    store = InMemoryVectorStore(embeddings)
    store.add_documents(docs)
    print(f"indexed {len(docs)} chunks in {time.perf_counter() - t0:.1f} s")

    reader = load_reader(not args.no_reader)
    compressor = SemTokenCompressor(
        compression_ratio=args.ratio,
        # budgets in the reader's own tokens when there is a reader
        count_tokenizer="smollm2" if reader is not None else None,
        store_dir=args.store_dir,
    )
    base = store.as_retriever(search_kwargs={"k": args.k})
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)

    def format_docs(found: list[Any]) -> str:
        return "\n\n".join(d.page_content for d in found)

    chain = None
    if reader is not None:
        chain = {
            "context": retriever | format_docs,
            "question": RunnablePassthrough(),
        } | answer_step(reader)

    total_in = total_kept = 0
    for row in rows[: args.questions]:
        question = row["question"]
        retrieved = base.invoke(question)
        t1 = time.perf_counter()
        kept = compressor.compress_documents(retrieved, question)
        ms = (time.perf_counter() - t1) * 1e3
        n_in = sum(compressor.engine.count_tokens(d.page_content) for d in retrieved)
        n_kept = sum(d.metadata["semtoken"]["kept_tokens"] for d in kept)
        total_in, total_kept = total_in + n_in, total_kept + n_kept
        print(f"\nQ: {question}")
        print(
            f"   {len(retrieved)} chunks, {n_in} tokens -> {len(kept)} chunks, {n_kept} tokens "
            f"(saved {n_in - n_kept}, {1 - n_kept / max(n_in, 1):.0%}) in {ms:.0f} ms"
        )
        if chain is not None:
            print(f"   answer: {chain.invoke(question)!r}   gold: {row['answers']}")
        else:
            print(f"   context: {format_docs(kept)[:400]!r}...   gold: {row['answers']}")
    print(
        f"\ntotal: {total_in} -> {total_kept} tokens "
        f"(saved {total_in - total_kept}, {1 - total_kept / max(total_in, 1):.0%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
