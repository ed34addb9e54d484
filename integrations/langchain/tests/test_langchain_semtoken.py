"""``SemTokenCompressor`` in real LangChain retrieval: a MiniLM vector store over >= 200
NarrativeQA chunks, ``ContextualCompressionRetriever`` (sync and async) and
``DocumentCompressorPipeline`` composition."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import (
    DocumentCompressorPipeline,
    LLMChainFilter,
)
from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM
from langchain_text_splitters import RecursiveCharacterTextSplitter

from langchain_semtoken import SemTokenCompressor

K = 6


@pytest.fixture(scope="module")
def retriever(lc_vector_store: Any):
    return lc_vector_store.as_retriever(search_kwargs={"k": K})


@pytest.fixture(scope="module")
def compressor(make_compressor: Any) -> SemTokenCompressor:
    return make_compressor(compression_ratio=0.5)


def test_adapter_fields_mirror_engine_config() -> None:
    comp = SemTokenCompressor(
        compression_ratio=0.3,
        similarity_threshold=0.8,
        entropy_threshold=0.6,
        dedup_threshold=None,
        force_keep=[r"\d+"],
        force_keep_presets=["dates"],
        budget_scope="per_document",
        engine_options={"separator": " ... "},
    )
    cfg = comp.semtoken_config()
    assert (cfg.compression_ratio, cfg.similarity_threshold, cfg.entropy_threshold) == (
        0.3,
        0.8,
        0.6,
    )
    assert cfg.selection.dedup_threshold is None and cfg.budget.force_keep == (r"\d+",)
    assert cfg.budget.budget_scope == "per_chunk" and cfg.budget.separator == " ... "
    assert not comp._slot.built  # nothing built, no model loaded, until first use


@pytest.mark.parametrize(
    "bad",
    [
        {"compression_ratio": 0.0},
        {"budget_tokens": -5},
        {"budget_scope": "global"},
        {"no_such_field": 1},
        {"engine_options": {"compression_ratio": 0.2}},
        {"engine_options": {"not_a_field": 1}},
        {"store": object()},
        {"force_keep": ["("]},
    ],
)
def test_invalid_configuration_fails_at_construction(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SemTokenCompressor(**bad)


@pytest.mark.slow
def test_contextual_compression_retriever_invoke(
    retriever: Any, compressor: SemTokenCompressor, nqa: Any
) -> None:
    _, questions = nqa
    ccr = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=retriever)
    saved = 0
    for q in questions[:5]:
        retrieved = retriever.invoke(q["question"])
        docs = ccr.invoke(q["question"])
        assert 0 < len(docs) <= len(retrieved) == K
        ids = [d.id for d in retrieved]
        assert [ids.index(d.id) for d in docs] == sorted(ids.index(d.id) for d in docs)
        by_id = {d.id: d for d in retrieved}
        for d in docs:
            meta = d.metadata.pop("semtoken")
            assert d.metadata == by_id[d.id].metadata
            assert len(d.page_content) < len(by_id[d.id].page_content) or meta["ratio"] == 1.0
        original = sum(compressor.engine.count_tokens(d.page_content) for d in retrieved)
        kept = sum(compressor.engine.count_tokens(d.page_content) for d in docs)
        assert kept <= 0.5 * original
        saved += original - kept
    assert saved > 0


@pytest.mark.slow
def test_gold_answers_mostly_survive(
    retriever: Any, compressor: SemTokenCompressor, nqa: Any
) -> None:
    """Quality floor: of the gold answers present in the retrieved chunks, most remain after
    halving the tokens (the design measured ~0.95 recall at 0.5 on this data)."""
    _, questions = nqa
    present = kept = 0
    for q in questions[:10]:
        retrieved = retriever.invoke(q["question"])
        full = " ".join(d.page_content for d in retrieved).lower()
        answers = [a.lower().rstrip(".") for a in q["answers"] if a.strip()]
        hits = [a for a in answers if a in full]
        if not hits:
            continue
        docs = compressor.compress_documents(retrieved, q["question"])
        context = " ".join(d.page_content for d in docs).lower()
        present += 1
        kept += any(a in context for a in hits)
    assert present >= 4
    assert kept / present >= 0.6, (kept, present)


@pytest.mark.slow
async def test_contextual_compression_retriever_ainvoke_equals_invoke(
    retriever: Any, compressor: SemTokenCompressor, nqa: Any
) -> None:
    _, questions = nqa
    ccr = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=retriever)
    for q in questions[:3]:
        sync = ccr.invoke(q["question"])
        asynchronous = await ccr.ainvoke(q["question"])
        assert asynchronous == sync and sync


@pytest.mark.slow
def test_pipeline_splitter_then_semtoken_then_llm_filter(
    retriever: Any, compressor: SemTokenCompressor, nqa: Any
) -> None:
    """Before: a text splitter re-cuts documents; after: LangChain's own LLMChainFilter (fake
    LLM saying YES to the first and NO to the rest) consumes our output."""
    _, questions = nqa
    q = questions[0]["question"]
    splitter = RecursiveCharacterTextSplitter(chunk_size=160, chunk_overlap=0)
    split = splitter.split_documents(retriever.invoke(q))
    llm_filter = LLMChainFilter.from_llm(FakeListLLM(responses=["YES"] + ["NO"] * 50))
    pipeline = DocumentCompressorPipeline(transformers=[splitter, compressor, llm_filter])
    ccr = ContextualCompressionRetriever(base_compressor=pipeline, base_retriever=retriever)
    docs = ccr.invoke(q)
    assert len(docs) == 1
    assert "semtoken" in docs[0].metadata
    pieces = [
        s.page_content
        for s in split
        if s.metadata["document_id"] == docs[0].metadata["document_id"]
    ]
    offsets = docs[0].metadata["semtoken"]["offsets"]
    assert any(
        all(0 <= a < b <= len(p) for a, b in offsets)
        and docs[0].page_content.startswith(p[offsets[0][0] : offsets[0][1]])
        for p in pieces
    )


@pytest.mark.slow
async def test_pipeline_semtoken_twice_async(
    retriever: Any, make_compressor: Any, nqa: Any
) -> None:
    """A SemTokenCompressor after another one: the second spends its budget on the first's
    output (offsets then index the text it received) and async matches sync."""
    _, questions = nqa
    q = questions[1]["question"]
    first, second = make_compressor(compression_ratio=0.6), make_compressor(compression_ratio=0.5)
    pipeline = DocumentCompressorPipeline(transformers=[first, second])
    retrieved = retriever.invoke(q)
    once = first.compress_documents(retrieved, q)
    twice = pipeline.compress_documents(retrieved, q)
    assert twice == await pipeline.acompress_documents(retrieved, q)
    kept_once = sum(d.metadata["semtoken"]["kept_tokens"] for d in once)
    kept_twice = sum(d.metadata["semtoken"]["kept_tokens"] for d in twice)
    assert 0 < kept_twice <= 0.5 * kept_once + 1
    by_id = {d.id: d.page_content for d in once}
    for d in twice:
        s, e = d.metadata["semtoken"]["offsets"][0]
        assert d.page_content.startswith(by_id[d.id][s:e])


@pytest.mark.slow
def test_persistent_store_dir_round_trip(tmp_path: Any, lc_documents: list[Document]) -> None:
    """``store_dir`` opens a FingerprintStore: a second compressor on the same directory (a new
    process, in effect) encodes nothing."""
    pytest.importorskip("semtoken_rag.store")
    docs, q = lc_documents[:6], "Who is Krag?"
    first = SemTokenCompressor(store_dir=tmp_path / "fp")
    out1 = first.compress_documents(docs, q)
    assert first.engine.encoder.calls == len(docs)
    second = SemTokenCompressor(store_dir=tmp_path / "fp")
    out2 = second.compress_documents(docs, q)
    assert second.engine.encoder.calls == 0
    assert out2 == out1
    assert second.engine.store.stats().hits == len(docs)


@pytest.mark.slow
def test_a_corrected_article_ingested_again_serves_its_new_fingerprints(tmp_path: Any) -> None:
    """An article is ingested, corrected ("25 people" -> "5 people", a paragraph's first words)
    and ingested again under its source; a recursive splitter's chunk of the corrected
    paragraph is served the new version's "5", not the old "25" it is also a verbatim slice of
    (cut inside a word), and the unchanged first paragraph the new version's fingerprints."""
    import numpy as np

    paragraphs = [
        "A fire broke out late on Tuesday in a warehouse near the harbour of the old town, and "
        "the flames spread to two neighbouring buildings before crews arrived from the station.",
        "25 people were taken to the regional hospital with burns and smoke inhalation, said a "
        "spokesperson for the emergency services who spoke to reporters on Wednesday morning.",
        "Investigators said the cause of the fire is still unknown and that the warehouse had "
        "passed its most recent safety inspection only three months before the blaze.",
    ]
    old = "\n\n".join(paragraphs)
    new = old.replace("25 people", "5 people")
    comp = SemTokenCompressor(compression_ratio=0.5, store_dir=tmp_path / "fp")
    for text in (old, new):
        comp.ingestor().transform_documents([Document(text, metadata={"source": "fire.html"})])
    splitter = RecursiveCharacterTextSplitter(chunk_size=250, chunk_overlap=0, add_start_index=True)
    chunks = splitter.split_documents([Document(new, metadata={"source": "fire.html"})])
    chunk = next(c for c in chunks if c.page_content.startswith("5 people"))
    enc = comp.engine.encoder
    calls = enc.calls
    assert comp.compress_documents([chunk], "How many people were taken to hospital?")
    assert enc.calls == calls  # served from the store
    (served,) = comp.engine.store.lookup([chunk.page_content], enc.cache_id)
    assert served is not None
    old_fp, new_fp = enc.encode_texts([old, new])
    five = served.vectors[0] / np.linalg.norm(served.vectors[0])
    at = new.index("5 people")
    new_five = new_fp.vectors[int(np.flatnonzero(new_fp.word_spans[:, 0] == at)[0])]
    old_25 = old_fp.vectors[int(np.flatnonzero(old_fp.word_spans[:, 0] == at)[0])]
    assert float(five @ new_five) > 0.99 > float(five @ old_25)
    # The first paragraph reads the same in both versions; its words' context does not.
    first = chunks[0].page_content
    assert first == paragraphs[0]
    (got,) = comp.engine.store.lookup([first], enc.cache_id)
    n = len(got.vectors)
    to_new = np.abs(got.vectors - new_fp.vectors[:n]).max()
    assert to_new < 0.005 < np.abs(got.vectors - old_fp.vectors[:n]).max()


@pytest.mark.slow
async def test_auto_budget_reports_its_choice_on_every_document(
    make_compressor: Any, lc_documents: list[Document]
) -> None:
    """``compression_ratio="auto"``: each document says which budget the call chose and why
    (the same for all of them), within the bounds; async equals sync."""
    comp = make_compressor(compression_ratio="auto", min_ratio=0.1, max_ratio=0.4, drop_empty=False)
    docs = lc_documents[:6]
    out = comp.compress_documents(docs, "Who is Krag?")
    metas = [d.metadata["semtoken"] for d in out]
    choices = [m["budget_choice"] for m in metas]
    assert choices and all(c == choices[0] for c in choices)
    assert choices[0]["reason"] in ("coverage", "floor", "ceiling")
    original = sum(m["original_tokens"] for m in metas)
    assert 0 < sum(m["kept_tokens"] for m in metas) <= choices[0]["tokens"]
    assert choices[0]["tokens"] <= 0.4 * original + 1
    again = await comp.acompress_documents(docs, "Who is Krag?")
    assert [d.page_content for d in again] == [d.page_content for d in out]
    fixed = make_compressor(compression_ratio=0.3).compress_documents(docs, "Krag")
    assert all("budget_choice" not in d.metadata["semtoken"] for d in fixed)
