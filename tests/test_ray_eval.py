"""Distributed evaluation (``RayRunner``) resumes a stopped run and then equals the serial run.

Real reader (SmolLM2, fp32), real MiniLM, a real local Ray with 2 actors; the three NarrativeQA
questions with the shortest contexts (one per document), methods none / closed-book /
embed-filter / semtoken / semtoken-docs (the run's documents shipped to the actors), no
generation.  The Ray run resumes one that stopped after its first example (the records a run
killed then leaves), so one run checks the resume and two actors at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

METHODS = ("none", "closed-book", "embed-filter", "semtoken", "semtoken-docs")
#: Summary figures that are timings (they differ between any two runs).
TIMINGS = {"compress_ms_per_1k", "prefill_ms", "ttft_ms", "decode_ms_per_token", "kv_bytes"}


@pytest.fixture(scope="module")
def examples(shared_data: Path) -> list[Any]:
    from semtoken_lab.eval.data import load_examples

    one_per_doc = load_examples([shared_data / "narrativeqa" / "test.jsonl"], per_doc=1)
    return sorted(one_per_doc, key=lambda e: len(e.context))[:3]


def _cfg(out: Path) -> Any:
    from semtoken_lab.eval.run_config import RunConfig

    return RunConfig(
        data=("unused",),
        out=str(out),
        methods=METHODS,
        ratios=(0.5,),
        reader_dtype="float32",
        generate=False,
        progress=False,
    )


def _summary(out: Path) -> dict[tuple[str, str, float], dict[str, Any]]:
    rows = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return {(r["dataset"], r["method"], r["ratio"]): r for r in rows}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        # Means over records that arrived in another order may differ in the last bits.
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return bool(a == b)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The serial run with one torch thread, like each actor of 1 CPU (Ray sets
    OMP_NUM_THREADS=1 there); on a shared 2-core machine it is also much faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_ray_eval_resumes_and_equals_serial(
    ray_local: Any, examples: list[Any], tmp_path: Path, one_thread: None
) -> None:
    from semtoken_lab.eval.distributed import RayRunner
    from semtoken_lab.eval.records import RecordWriter, read_records
    from semtoken_lab.eval.runner import Runner

    serial = Runner(_cfg(tmp_path / "serial")).run(examples)
    assert serial.new_records == 3 * len(METHODS)

    # A run stopped after its first example, resumed on Ray: only the other two are sent, one
    # per actor, and appended to what the stopped run wrote.
    with RecordWriter(tmp_path / "ray" / "examples.jsonl", append=False) as writer:
        for r in serial.records:
            if r.example_id == examples[0].id:
                writer.write(r)
    resume = dataclasses.replace(_cfg(tmp_path / "ray"), resume=True)
    assert RayRunner(resume, actors=2).run(examples).new_records == 2 * len(METHODS)

    keys = {r.key for r in read_records(tmp_path / "ray" / "examples.jsonl")}
    assert keys == {r.key for r in serial.records}
    got, want = _summary(tmp_path / "ray"), _summary(tmp_path / "serial")
    assert got.keys() == want.keys()
    for k, row in want.items():
        for name, value in row.items():
            if name not in TIMINGS:
                assert _same(got[k][name], value), (k, name, got[k][name], value)
    # The per-record figures agree too (not only their means).
    by_key = {r.key: r for r in serial.records}
    for r in read_records(tmp_path / "ray" / "examples.jsonl"):
        s = by_key[r.key]
        assert (r.tokens_full, r.tokens_kept, r.answer_recall) == (
            s.tokens_full,
            s.tokens_kept,
            s.answer_recall,
        )
        assert _same(r.answer_loglik, s.answer_loglik)
