"""``SemTokenNodePostprocessor`` and ``SemTokenFingerprinter`` in real LlamaIndex pipelines:
a MiniLM ``VectorStoreIndex`` over >= 200 NarrativeQA chunks, query engines (sync, async,
``RetrieverQueryEngine``) and an ``IngestionPipeline``."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Document
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MediaResource, MetadataMode, Node, NodeWithScore, TextNode
from semtoken_rag.store import FingerprintStore

from llama_index.postprocessor.semtoken import (
    SemTokenFingerprinter,
    SemTokenNodePostprocessor,
)

K = 6


@pytest.fixture(scope="module")
def postprocessor(make_postprocessor: Any) -> SemTokenNodePostprocessor:
    return make_postprocessor(compression_ratio=0.5)


def _check_against_retrieved(retrieved: list[NodeWithScore], out: list[NodeWithScore]) -> None:
    """Ids, scores, order and metadata of ``out`` are those of ``retrieved``."""
    by_id = {n.node.node_id: n for n in retrieved}
    ids = [n.node.node_id for n in retrieved]
    positions = [ids.index(n.node.node_id) for n in out]
    assert positions == sorted(positions)
    for n in out:
        src = by_id[n.node.node_id]
        assert n.score == src.score
        meta = dict(n.node.metadata)
        sem = meta.pop("semtoken")
        assert meta == src.node.metadata
        assert set(sem) == {"offsets", "original_tokens", "kept_tokens", "ratio"}
        original = src.node.get_content(metadata_mode=MetadataMode.NONE)
        pieces = [original[s:e] for s, e in sem["offsets"]]
        assert " … ".join(pieces) == n.node.get_content(metadata_mode=MetadataMode.NONE)
        assert n.node.relationships == src.node.relationships
        # the bookkeeping never reaches the LLM prompt or an embedding
        assert "semtoken" not in n.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "semtoken" not in n.node.get_content(metadata_mode=MetadataMode.EMBED)
        assert "semtoken" not in src.node.metadata  # the retrieved node was not mutated


@pytest.mark.slow
def test_class_name_and_serialisation(postprocessor: SemTokenNodePostprocessor) -> None:
    assert SemTokenNodePostprocessor.class_name() == "SemTokenNodePostprocessor"
    data = postprocessor.to_dict()
    assert data["class_name"] == "SemTokenNodePostprocessor" and "store" not in data
    clone = SemTokenNodePostprocessor.from_dict(data)
    assert clone.semtoken_config() == postprocessor.semtoken_config()


def test_invalid_configuration_fails_at_construction() -> None:
    for bad in ({"compression_ratio": 1.5}, {"budget_scope": "per_paragraph"}, {"nope": 1}):
        with pytest.raises(ValueError):
            SemTokenNodePostprocessor(**bad)


@pytest.mark.slow
def test_query_engine_keeps_ids_scores_metadata(
    li_index: Any, postprocessor: SemTokenNodePostprocessor, li_nqa: Any
) -> None:
    _, questions = li_nqa
    retriever = li_index.as_retriever(similarity_top_k=K)
    engine = li_index.as_query_engine(
        llm=MockLLM(), similarity_top_k=K, node_postprocessors=[postprocessor]
    )
    for q in questions[:4]:
        retrieved = retriever.retrieve(q["question"])
        response = engine.query(q["question"])
        out = response.source_nodes
        assert 0 < len(out) <= len(retrieved) == K
        _check_against_retrieved(retrieved, out)
        kept = sum(n.node.metadata["semtoken"]["kept_tokens"] for n in out)
        original = sum(
            postprocessor.engine.count_tokens(n.node.get_content(MetadataMode.NONE))
            for n in retrieved
        )
        assert kept <= 0.5 * original


@pytest.mark.slow
async def test_async_query_engine_equals_sync(
    li_index: Any, postprocessor: SemTokenNodePostprocessor, li_nqa: Any
) -> None:
    _, questions = li_nqa
    retriever = li_index.as_retriever(similarity_top_k=K)
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=MockLLM(), node_postprocessors=[postprocessor]
    )
    for q in questions[4:7]:
        sync = engine.query(q["question"]).source_nodes
        asynchronous = (await engine.aquery(q["question"])).source_nodes
        assert [(n.node.node_id, n.score, n.node.get_content()) for n in asynchronous] == [
            (n.node.node_id, n.score, n.node.get_content()) for n in sync
        ]
        nodes = retriever.retrieve(q["question"])
        direct = await postprocessor.apostprocess_nodes(nodes, query_str=q["question"])
        assert [n.node.get_content() for n in direct] == [n.node.get_content() for n in sync]


@pytest.mark.slow
def test_empty_unicode_duplicates_and_textless_nodes(
    make_postprocessor: Any, li_nodes: list[TextNode]
) -> None:
    pp = make_postprocessor(compression_ratio=1.0)
    assert pp.postprocess_nodes([], query_str="anything") == []
    text = li_nodes[0].text
    dupes = [NodeWithScore(node=TextNode(id_=f"d{i}", text=text), score=1.0) for i in range(3)]
    out = pp.postprocess_nodes(dupes, query_str="Who is Maskull?")
    assert [n.node.node_id for n in out] == ["d0"]  # near-duplicates skipped, then dropped
    empty = NodeWithScore(node=TextNode(id_="e", text=""), score=0.1)
    uni = NodeWithScore(node=TextNode(id_="u", text="Zoë ate crème brûlée 🍮 in 東京."), score=0.2)
    blank = NodeWithScore(node=TextNode(id_="b", text=" \n\t "), score=0.3)
    out = pp.postprocess_nodes([empty, blank, uni], query_str="What did Zoë eat?")
    assert out[0] is empty  # nothing to compress: passed through untouched
    assert [n.node.node_id for n in out] == ["e", "u"]  # blank text: compressed away, dropped
    assert out[1].node.get_content() == "Zoë ate crème brûlée 🍮 in 東京."
    # a Document or a (media) Node retrieved as it is: no character offsets, still compressed
    other = li_nodes[1].text
    others = [Document(text=text, id_="doc"), Node(text_resource=MediaResource(text=other))]
    out = pp.postprocess_nodes([NodeWithScore(node=n, score=1.0) for n in others], query_str="?")
    assert [n.node.get_content() for n in out] == [text, other]
    keep_all = make_postprocessor(compression_ratio=0.1, drop_empty=False)
    nodes = [NodeWithScore(node=n, score=0.5) for n in li_nodes[:5]]
    out = keep_all.postprocess_nodes([*nodes, blank], query_str="Who is Krag?")
    assert [n.node.node_id for n in out] == [n.node.node_id for n in [*nodes, blank]]
    assert out[-1].node.get_content() == "" and out[-1].node.metadata["semtoken"]["offsets"] == []


@pytest.mark.slow
def test_budget_per_node(make_postprocessor: Any, li_nodes: list[TextNode]) -> None:
    pp = make_postprocessor(budget_tokens=150, budget_scope="per_node")
    nodes = [NodeWithScore(node=n, score=0.5) for n in li_nodes[:5]]
    out = pp.postprocess_nodes(nodes, query_str="Who is Krag?")
    assert sum(n.node.metadata["semtoken"]["kept_tokens"] for n in out) <= 150


@pytest.mark.slow
async def test_auto_budget_reports_its_choice_on_every_node(
    make_postprocessor: Any, li_nodes: list[TextNode]
) -> None:
    """``compression_ratio="auto"``: each node says which budget the call chose and why (the
    same for all of them), within the bounds; async equals sync."""
    pp = make_postprocessor(
        compression_ratio="auto", min_ratio=0.1, max_ratio=0.4, drop_empty=False
    )
    nodes = [NodeWithScore(node=n, score=0.5) for n in li_nodes[:6]]
    out = pp.postprocess_nodes(nodes, query_str="Who is Krag?")
    choices = [n.node.metadata["semtoken"]["budget_choice"] for n in out]
    assert choices and all(c == choices[0] for c in choices)
    assert choices[0]["reason"] in ("coverage", "floor", "ceiling")
    original = sum(n.node.metadata["semtoken"]["original_tokens"] for n in out)
    kept = sum(n.node.metadata["semtoken"]["kept_tokens"] for n in out)
    assert 0 < kept <= choices[0]["tokens"] <= 0.4 * original + 1
    again = await pp.apostprocess_nodes(nodes, query_str="Who is Krag?")
    assert [n.node.get_content() for n in again] == [n.node.get_content() for n in out]
    fixed = make_postprocessor(compression_ratio=0.3).postprocess_nodes(nodes, query_str="Krag")
    assert all("budget_choice" not in n.node.metadata["semtoken"] for n in fixed)


@pytest.mark.slow
def test_ingestion_pipeline_fingerprinter(li_engine: Any, li_nqa: Any) -> None:
    """Fingerprints computed at ingestion: nodes come out unchanged and the query-time
    postprocessor (same store) encodes nothing."""
    from semtoken_rag import Compressor

    chunks, questions = li_nqa
    docs = [Document(text=c["text"], id_=f"doc-{c['id']}") for c in chunks[:20]]
    store = FingerprintStore()  # ingestion writes to a store (an in-memory cache is refused)
    fingerprinter = SemTokenFingerprinter.from_engine(
        Compressor(li_engine.config, encoder=li_engine.encoder, store=store)
    )
    splitter = SentenceSplitter(chunk_size=64, chunk_overlap=0)
    calls = li_engine.encoder.calls
    nodes = IngestionPipeline(transformations=[splitter, fingerprinter]).run(documents=docs)
    texts = {n.get_content(MetadataMode.NONE) for n in nodes}
    assert li_engine.encoder.calls - calls == len(texts) == len(store)
    # the component itself returns the very nodes it was given
    snapshot = [n.model_copy(deep=True) for n in nodes]
    assert fingerprinter(nodes) is nodes
    assert nodes == snapshot
    assert li_engine.encoder.calls - calls == len(texts)  # second pass: all hits
    pp = SemTokenNodePostprocessor.from_engine(
        Compressor(li_engine.config, encoder=li_engine.encoder, store=store)
    )
    before = li_engine.encoder.calls
    out = pp.postprocess_nodes(
        [NodeWithScore(node=n, score=1.0) for n in nodes[:6]], query_str=questions[0]["question"]
    )
    assert out and li_engine.encoder.calls == before


@pytest.mark.slow
def test_ingestion_pipeline_in_worker_processes(li_nqa: Any, tmp_path: Any) -> None:
    """The README's pipeline run with ``num_workers=2``: LlamaIndex pickles the fingerprinter
    into two spawned processes, each opens the store directory and writes its documents; the
    postprocessor then serves the nodes cut from them without encoding."""
    chunks, questions = li_nqa
    docs = [Document(text=c["text"], id_=f"doc-{c['id']}") for c in chunks[:6]]
    post = SemTokenNodePostprocessor(store_dir=tmp_path / "fp", compression_ratio=0.5)
    splitter = SentenceSplitter(chunk_size=64, chunk_overlap=0)
    pipeline = IngestionPipeline(transformations=[post.fingerprinter(), splitter])
    nodes = pipeline.run(documents=docs, num_workers=2)
    assert len(nodes) > len(docs) and len(post.engine.store) == len(docs)
    before = post.engine.encoder.calls
    retrieved = [NodeWithScore(node=n, score=1.0) for n in nodes[:6]]
    assert post.postprocess_nodes(retrieved, query_str=questions[0]["question"])
    assert post.engine.encoder.calls == before
    post.engine.store.close()


@pytest.mark.slow
async def test_fingerprinter_acall_and_standalone_fields(li_engine: Any, li_nodes: Any) -> None:
    store = FingerprintStore()
    standalone = SemTokenFingerprinter(store=store, engine_options={"batch_size": 8})
    assert standalone.to_dict()["class_name"] == "SemTokenFingerprinter"
    from semtoken_rag import Compressor

    shared = SemTokenFingerprinter.from_engine(
        Compressor(li_engine.config, encoder=li_engine.encoder, store=store)
    )
    nodes = li_nodes[:4]
    assert await shared.acall(nodes) is nodes
    assert len(store) == 4
