"""Smoke evaluation: real reader, real MiniLM, every method, resume after a simulated kill.

The two NarrativeQA questions with the shortest contexts (one per document) are used so the
whole module stays within a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from semtoken_lab.eval.data import Example, load_examples
from semtoken_lab.eval.method_env import MethodEnv
from semtoken_lab.eval.methods import METHODS
from semtoken_lab.eval.records import read_records
from semtoken_lab.eval.run_config import RunConfig
from semtoken_lab.eval.runner import Runner

#: Every method, but of the store variants only the untrained float16 one: the trained codecs
#: share its code path and their training (16k word vectors, minutes on two cores) is covered by
#: tests/test_store.py::test_default_codec_on_real_minilm_trains_and_decodes_faithfully.
#: LongLLMLingua runs on one example of its own (test_longllmlingua_steers_to_the_ratio): up to
#: five rate-steering passes of its scorer LM per example made it two thirds of this module's
#: time when it ran on all three examples of the resume test, which checks the runner, not it.
SMOKE_METHODS = tuple(
    m
    for m in METHODS
    if (not m.startswith("semtoken-store-") or m == "semtoken-store-float16")
    and m != "longllmlingua"
)

pytestmark = pytest.mark.slow

RATIO = 0.5
TOL = 0.03


@pytest.fixture(scope="module")
def short_examples(shared_data: Path) -> list[Example]:
    exs = load_examples([shared_data / "narrativeqa" / "test.jsonl"], limit=400)
    by_doc: dict[str, Example] = {}
    for ex in sorted(exs, key=lambda e: len(e.context)):
        by_doc.setdefault(ex.context, ex)
    return list(by_doc.values())[:2]


@pytest.fixture(scope="module")
def reader(local_reader):  # type: ignore[no-untyped-def]
    return local_reader(device="cpu")  # LocalReader("smollm2", device="cpu")


def _cfg(out: Path, **kw: object) -> RunConfig:
    base = dict(
        data=("unused",),
        out=str(out),
        methods=SMOKE_METHODS,
        ratios=(RATIO,),
        generate=False,
        progress=False,
    )
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


def test_all_methods_then_resume_after_kill(
    tmp_path: Path, short_examples: list[Example], reader
) -> None:  # type: ignore[no-untyped-def]
    env = MethodEnv(lm=reader.model)
    out = tmp_path / "run"
    first = Runner(_cfg(out), reader=reader, env=env).run(short_examples[:1])
    n_keys = len(SMOKE_METHODS)
    assert first.new_records == n_keys
    for name in (
        "examples.jsonl",
        "summary.json",
        "report.md",
        "quality_vs_ratio.png",
        "density_heatmap.png",
        "config.json",
    ):
        assert (out / name).is_file(), name
    recs = read_records(out / "examples.jsonl")
    for r in recs:
        if r.method not in ("none", "closed-book"):
            assert abs(r.achieved_ratio - RATIO) <= TOL, (r.method, r.achieved_ratio)
        assert r.answer_loglik is not None
    summary = json.loads((out / "summary.json").read_text())
    assert {row["method"] for row in summary} == set(SMOKE_METHODS)
    assert "tie" in (out / "report.md").read_text() or "better" in (out / "report.md").read_text()

    # Simulate a kill in the middle of writing the last record.
    path = out / "examples.jsonl"
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + (len(data) - last) // 2])

    second = Runner(_cfg(out, resume=True), reader=reader, env=env).run(short_examples[:2])
    assert second.new_records == 1 + n_keys  # the torn record + the new example only
    keys = [r.key for r in read_records(path)]
    assert len(keys) == len(set(keys)) == 2 * n_keys

    third = Runner(_cfg(out, resume=True), reader=reader, env=env).run(short_examples[:2])
    assert third.new_records == 0


def test_longllmlingua_steers_to_the_ratio(
    tmp_path: Path, short_examples: list[Example], reader
) -> None:  # type: ignore[no-untyped-def]
    """LongLLMLingua through the runner, with the reader's LM as its scorer: the rate steering
    lands within TOL of the target ratio (reader tokens) and the answer is scored."""
    out = tmp_path / "lingua"
    cfg = _cfg(out, methods=("none", "longllmlingua"))
    res = Runner(cfg, reader=reader, env=MethodEnv(lm=reader.model)).run(short_examples[:1])
    assert res.new_records == 2
    recs = {r.method: r for r in read_records(out / "examples.jsonl")}
    assert set(recs) == {"none", "longllmlingua"}
    lingua = recs["longllmlingua"]
    assert abs(lingua.achieved_ratio - RATIO) <= TOL, lingua.achieved_ratio
    assert lingua.answer_loglik is not None and recs["none"].answer_loglik is not None
    assert lingua.tokens_kept < recs["none"].tokens_kept


@dataclass
class _Answer:
    text: str
    prompt_tokens: int = 10
    prefill_ms: float = 1.0
    ttft_ms: float = 2.0
    decode_ms_per_token: float = 0.5
    new_tokens: int = 3
    kv_bytes: int = 100
    peak_memory_bytes: int = 0
    attn_implementation: str = "sdpa"
    device: str = "cpu"


@dataclass
class _LL:
    total: float
    per_token: float
    n_tokens: int


class _StandInReader:
    """Stand-in with the LocalReader API: echoes the first context word; LL grows with length."""

    model = None

    def answer(self, question, context, *, max_new_tokens=32, task="qa", options=None):  # type: ignore[no-untyped-def]
        return _Answer(text=(context.split() or [""])[0])

    def answer_loglik_batch(self, questions, contexts, answers, *, task="qa", batch_size=8):  # type: ignore[no-untyped-def]
        return [_LL(-5.0 + len(c) / 1e4, -5.0 + len(c) / 1e4, 1) for c in contexts]


def test_rag_mode_with_generation(tmp_path: Path, shared_data: Path) -> None:
    exs = load_examples([shared_data / "hotpotqa_dev_sample" / "dev.jsonl"], limit=4)
    cfg = _cfg(
        tmp_path / "rag",
        mode="rag",
        top_k=3,
        methods=("none", "closed-book", "truncate", "random", "embed-filter"),
        generate=True,
    )
    res = Runner(cfg, reader=_StandInReader(), env=MethodEnv()).run(exs)
    assert res.new_records == 4 * 5
    recs = read_records(tmp_path / "rag" / "examples.jsonl")
    assert all(r.prediction is not None and r.f1 is not None for r in recs)
    assert all(r.mode == "rag" for r in recs)
    full = [r for r in recs if r.method == "none"]
    assert all(r.tokens_full > 300 for r in full)  # 3 chunks of 120 words
    assert (tmp_path / "rag" / "time_breakdown.png").is_file()


def test_report_only_on_a_folder_without_records(tmp_path: Path) -> None:
    from semtoken_lab.eval.rereport import report_only

    from semtoken_rag.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"no examples\.jsonl"):
        report_only(tmp_path / "missing")


def test_semtoken_docs_serves_every_rag_chunk_sliced_from_its_document(
    tmp_path: Path, shared_data: Path
) -> None:
    """``semtoken-docs`` ingests the run's documents (contexts after --max-context-tokens) whole
    before the first example; every retrieved chunk is then served from them, never encoded."""
    from semtoken_lab.eval.runner import _truncate_middle
    from semtoken_lab.eval.semtoken_variants import SemTokenMethod

    from semtoken_rag.fingerprints import fingerprint_key

    exs = load_examples([shared_data / "hotpotqa_dev_sample" / "dev.jsonl"], limit=3)
    cfg = _cfg(
        tmp_path / "docs",
        mode="rag",
        top_k=3,
        max_context_tokens=600,
        methods=("semtoken", "semtoken-docs"),
    )
    runner = Runner(cfg, reader=_StandInReader(), env=MethodEnv())
    res = runner.run(exs)
    assert res.new_records == 3 * 2

    tok = runner.env.tokenizer()
    prepared = [_truncate_middle(tok, ex.context, 600) for ex in exs]
    assert runner.env.documents == tuple(dict.fromkeys(prepared))
    assert any(p != ex.context for p, ex in zip(prepared, exs))  # the truncation applied

    method = runner.method("semtoken-docs")
    assert isinstance(method, SemTokenMethod)
    assert method.calls == 3
    assert method.encoder_calls == 0  # every chunk served from the document store
    store = method.comp.store
    assert len(store) == len(runner.env.documents)  # nothing stored at query time

    chunks = runner.contexts(exs)[0]
    encoder_id = method.comp.encoder.cache_id
    assert not store.contains([fingerprint_key(c, encoder_id) for c in chunks])  # no chunk alone
    sliced = store.lookup(chunks, encoder_id)
    assert all(fp is not None for fp in sliced)
    alone = method.comp.encoder.encode_texts(chunks)
    for fp, own in zip(sliced, alone):
        assert fp is not None and fp.n_words == own.n_words
    # Context across the chunk's edges changes the fingerprints: that is what is measured.
    assert any(
        fp is not None and not np.allclose(fp.vectors, own.vectors, atol=1e-4)
        for fp, own in zip(sliced, alone)
    )
