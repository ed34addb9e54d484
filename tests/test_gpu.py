"""The GPU path on a real CUDA device (``pytest -m gpu -rs``; every test skips without CUDA).

Run by ``scripts/gpu_check.sh`` on the device machine with random-weight models built from the
real configs (``SEMTOKEN_GPU_MODELS``; agreement needs only the same weights on both paths).
Without that variable the models are built here from the packaged encoder and reader.  Measured
agreement figures are written to ``SEMTOKEN_GPU_REPORT`` (JSON) when set.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from semtoken_rag.errors import ConfigError

CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not CUDA, reason="no CUDA device (torch.cuda.is_available() is False)"),
]
ROOT = Path(__file__).resolve().parents[1]
REPORT: dict[str, Any] = {}
N_TEXTS = 20


@pytest.fixture(scope="session", autouse=True)
def agreement_report():
    """Collects measured agreement figures; written to ``$SEMTOKEN_GPU_REPORT`` at the end."""
    yield REPORT
    path = os.environ.get("SEMTOKEN_GPU_REPORT")
    if path and REPORT:
        Path(path).write_text(json.dumps(REPORT, indent=1, default=str), encoding="utf-8")


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, str]:
    from semtoken_lab.bench.synthetic import build_models, export_assets

    ready = os.environ.get("SEMTOKEN_GPU_MODELS")
    if ready:
        root = Path(ready)
    else:
        assets = tmp_path_factory.mktemp("assets")
        export_assets(assets, _data_root())
        root = tmp_path_factory.mktemp("models")
        build_models(assets, root)
    return {"encoder": str(root / "minilm"), "reader": str(root / "smollm2")}


def _data_root() -> Path:
    return Path(os.environ.get("SEMTOKEN_GPU_DATA") or ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def rows() -> list[dict[str, Any]]:
    path = _data_root() / "narrativeqa" / "test.jsonl"
    if not path.is_file():
        pytest.skip(f"no NarrativeQA data at {path}")
    out, seen = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["context"] not in seen:
            seen.add(row["context"])
            out.append(row)
        if len(out) >= N_TEXTS:
            break
    return out


def _encoder(models: dict[str, str], device: str, dtype: str) -> Any:
    from semtoken_rag.encoder import TransformerEncoder

    return TransformerEncoder(models["encoder"], device=device, dtype=dtype)


def _word_cosines(a: list[Any], b: list[Any]) -> np.ndarray:
    return np.concatenate([(x.vectors * y.vectors).sum(1) for x, y in zip(a, b, strict=True)])


# ------------------------------------------------------------------ fingerprints
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_fingerprints_agree_with_fp32(models, rows, dtype):
    texts = [r["context"] for r in rows]
    ref = _encoder(models, "cuda", "float32").encode_texts(texts)
    half = _encoder(models, "cuda", dtype).encode_texts(texts)
    cos = _word_cosines(ref, half)
    REPORT[f"fingerprints_{dtype}_vs_fp32"] = {
        "words": len(cos),
        "min_cosine": float(cos.min()),
        "p01_cosine": float(np.quantile(cos, 0.01)),
        "mean_cosine": float(cos.mean()),
    }
    assert cos.min() >= 0.999, (dtype, float(cos.min()))


def test_cuda_fp32_fingerprints_agree_with_cpu(models, rows):
    texts = [r["context"] for r in rows[:5]]
    cos = _word_cosines(
        _encoder(models, "cpu", "float32").encode_texts(texts),
        _encoder(models, "cuda", "float32").encode_texts(texts),
    )
    REPORT["fingerprints_cuda_fp32_vs_cpu_fp32_min_cosine"] = float(cos.min())
    assert cos.min() >= 0.9999


def test_compression_fp16_vs_fp32_outputs_listed(models, rows):
    """Same fixed set through fp32 and fp16 fingerprints: identical outputs, or every
    difference listed (fp16 moves vectors by ~1e-3, which can flip a decision that sits on a
    threshold) with its overlap; the kept text must stay nearly the same."""
    from semtoken_rag import Compressor, SemTokenConfig

    comps = {
        dt: Compressor(
            SemTokenConfig(encoder_model=models["encoder"], device="cuda", encoder_dtype=dt)
        )
        for dt in ("float32", "float16")
    }
    diffs, identical, overlaps = [], 0, []
    for r in rows:
        out = {dt: c.compress(r["context"], r["question"], ratio=0.5) for dt, c in comps.items()}
        a, b = out["float32"].joined(), out["float16"].joined()
        if a == b:
            identical += 1
            overlaps.append(1.0)
            continue
        wa, wb = set(a.split()), set(b.split())
        jac = len(wa & wb) / max(len(wa | wb), 1)
        overlaps.append(jac)
        diffs.append(
            {
                "id": r.get("id"),
                "ratio_fp32": out["float32"].ratio,
                "ratio_fp16": out["float16"].ratio,
                "word_jaccard": round(jac, 4),
                "only_fp32": sorted(wa - wb)[:20],
                "only_fp16": sorted(wb - wa)[:20],
            }
        )
    REPORT["compression_fp16_vs_fp32"] = {
        "examples": len(rows),
        "identical": identical,
        "mean_word_jaccard": float(np.mean(overlaps)),
        "differences": diffs,
    }
    assert identical >= len(rows) // 2, REPORT["compression_fp16_vs_fp32"]
    assert min(overlaps) >= 0.8, REPORT["compression_fp16_vs_fp32"]


# ------------------------------------------------------------------ reader attention
@pytest.fixture(scope="module")
def flash_reader(models):
    from semtoken_lab.reader import LocalReader

    return LocalReader(
        models["reader"], device="cuda", dtype="bfloat16", attn="flash_attention_2", strict=True
    )


@pytest.fixture(scope="module")
def eager_reader(models):
    from semtoken_lab.reader import LocalReader

    return LocalReader(models["reader"], device="cuda", dtype="bfloat16", attn="eager")


def test_forced_flash_logits_match_eager(flash_reader, eager_reader, rows):
    assert flash_reader.attn_implementation == "sdpa(flash)"
    errs = []
    for r in rows[:5]:
        ids = torch.tensor([flash_reader.prompt_ids(r["question"], r["context"][:4000])])
        ids = ids.to("cuda")

        def logits(reader: Any, ids: Any = ids) -> Any:
            with torch.inference_mode():
                return reader.model(input_ids=ids, use_cache=False).logits.float()

        flash, kernel = flash_reader._attention.run(lambda: logits(flash_reader))
        assert kernel == "sdpa(flash)"  # the forced backend returned: the flash kernel ran
        eager = logits(eager_reader)
        errs.append(float((flash - eager).norm() / eager.norm()))
        assert torch.equal(flash[0, -1].argmax(), eager[0, -1].argmax())
    REPORT["reader_flash_vs_eager_rel_error"] = errs
    assert max(errs) <= 2e-2  # bf16 operands: 1e-3 .. 1e-2 expected


def test_forced_flash_greedy_answers_agree_with_eager(flash_reader, eager_reader, rows):
    pairs = []
    for r in rows[:8]:
        a = flash_reader.answer(r["question"], r["context"][:3000], max_new_tokens=12)
        b = eager_reader.answer(r["question"], r["context"][:3000], max_new_tokens=12)
        assert a.attn_implementation == "sdpa(flash)" and b.attn_implementation == "eager"
        pairs.append((a.text, b.text))
    same = sum(x == y for x, y in pairs)
    REPORT["reader_greedy_flash_vs_eager"] = {"same": same, "of": len(pairs), "pairs": pairs}
    assert same >= len(pairs) - 1, pairs


def test_forced_flash_cannot_take_a_padded_batch(flash_reader, models, rows):
    from semtoken_lab.reader import LocalReader

    qs = [r["question"] for r in rows[:2]]
    cs = [rows[0]["context"][:500], rows[1]["context"][:2500]]
    with pytest.raises(ConfigError, match="padded"):
        flash_reader.answer_batch(qs, cs, max_new_tokens=2)
    lenient = LocalReader(
        models["reader"], device="cuda", dtype="bfloat16", attn="flash_attention_2"
    )
    with pytest.warns(RuntimeWarning, match="cannot run this call"):
        out = lenient.answer_batch(qs, cs, max_new_tokens=2)
    assert {a.attn_implementation for a in out} == {"sdpa"}  # reported as what ran


def test_auto_attention_measures_and_keeps_the_fastest(models):
    from semtoken_lab.reader import LocalReader

    r = LocalReader(models["reader"], device="cuda", dtype="bfloat16", attn="auto")
    REPORT["attn_auto"] = {"chosen": r.attn_implementation, "timings_ms": r.attention_timings}
    assert "sdpa(flash)" in r.attention_timings
    assert r.attention_timings.get(r.attn_implementation) is not None
    ok = {k: v for k, v in r.attention_timings.items() if v is not None}
    assert ok[r.attn_implementation] <= 1.06 * min(ok.values())


# ------------------------------------------------------------------ devices and threads
def test_explicit_cuda_index(models, rows):
    from semtoken_lab.reader import LocalReader
    from semtoken_lab.reader.measure import DeviceClock

    assert DeviceClock("cuda").device == torch.device("cuda", torch.cuda.current_device())
    r = LocalReader(models["reader"], device="cuda:0", dtype="bfloat16")
    ans = r.answer(rows[0]["question"], rows[0]["context"][:1000], max_new_tokens=4)
    assert ans.device == "cuda:0" and ans.peak_memory_bytes > 0
    assert next(r.model.parameters()).device == torch.device("cuda", 0)
    enc = _encoder(models, "cuda:0", "auto")
    assert next(enc.model.parameters()).device == torch.device("cuda", 0)
    assert enc.torch_dtype == torch.float16, "encoder dtype 'auto' on cuda:0 must be fp16"
    with pytest.raises(ConfigError):
        LocalReader(models["reader"], device=f"cuda:{torch.cuda.device_count()}")


def test_second_gpu_is_measured_on_itself(models, rows):
    if torch.cuda.device_count() < 2:
        pytest.skip(f"one GPU only ({torch.cuda.device_count()}): cuda:1 cannot be checked")
    from semtoken_lab.reader import LocalReader

    torch.cuda.set_device(0)
    r = LocalReader(models["reader"], device="cuda:1", dtype="bfloat16")
    ans = r.answer(rows[0]["question"], rows[0]["context"][:1000], max_new_tokens=4)
    assert ans.device == "cuda:1" and ans.peak_memory_bytes > 0
    assert torch.cuda.max_memory_allocated(1) >= ans.peak_memory_bytes


def test_threaded_cuda_use_matches_serial(models, rows):
    from semtoken_lab.reader import LocalReader

    enc = _encoder(models, "cuda", "float16")
    texts = [r["context"] for r in rows[:8]]
    serial = [enc.encode_texts([t])[0] for t in texts]
    reader = LocalReader(models["reader"], device="cuda", dtype="bfloat16")
    qs = [(r["question"], r["context"][:1500]) for r in rows[:4]]
    serial_ans = [reader.answer(q, c, max_new_tokens=6).text for q, c in qs]
    threaded: dict[int, Any] = {}
    answers: dict[int, Any] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            threaded[i] = enc.encode_texts([texts[i]])[0]
            if i < len(qs):
                answers[i] = reader.answer(*qs[i], max_new_tokens=6)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    cos = _word_cosines(serial, [threaded[i] for i in range(len(texts))])
    assert cos.min() >= 0.9999
    assert [answers[i].text for i in range(len(qs))] == serial_ans
    assert all(answers[i].peak_memory_bytes > 0 for i in range(len(qs)))


def test_selective_context_on_cuda_matches_cpu(models, rows):
    from semtoken_lab.eval.selective import token_surprisal
    from semtoken_lab.reader.loading import load_reader_model, load_reader_tokenizer

    tok = load_reader_tokenizer(models["reader"])
    text = rows[0]["context"][:3000]
    out = {}
    for dev in ("cpu", "cuda"):
        model = load_reader_model(
            models["reader"], dtype=torch.float32, attn_implementation="sdpa", device=dev
        )
        out[dev] = token_surprisal(model, tok, text)
    assert np.array_equal(out["cpu"][0], out["cuda"][0])
    np.testing.assert_allclose(out["cuda"][1], out["cpu"][1], atol=2e-2, rtol=1e-3)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_framework_pipeline_keeps_the_reader_on_its_device(models, device):
    from semtoken_lab.reader import LocalReader
    from semtoken_lab.reader.frameworks import text_generation_pipeline

    reader = LocalReader(models["reader"], device=device, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = text_generation_pipeline(reader, max_new_tokens=2)
    assert reader.model.device.type == device
    assert pipe.device.type == device
