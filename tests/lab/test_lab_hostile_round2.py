"""Hostile review of the lab, round 2: bad reader arguments, id collisions, torn kv-eval records.

Each test failed on the code before its fix: an answer budget that fills the window (a crash
in a tensor reshape, or a prompt silently emptied of its context), counts of the wrong type,
string options, a fifth option letter scored as a miss, two datasets' examples with the same
id reading one context, and a kv-eval resume crashing on a torn last line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from semtoken_rag.errors import ConfigError, InvalidInputError

QUESTION, CONTEXT = "What color is the sky?", "The sky is blue."


def sentence_spans(context: str, question: str) -> np.ndarray:
    return np.array([m.span() for m in re.finditer(r"[^.!?]+[.!?]?", context) if m.group().strip()])


@pytest.fixture(scope="module")
def reader(local_reader):  # type: ignore[no-untyped-def]
    return local_reader(device="cpu", dtype="float32")


# ---------------------------------------------------------------- reader arguments (no model)
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"max_new_tokens": "3"}, "'3'"),
        ({"max_new_tokens": None}, "None"),
        ({"max_new_tokens": 1.5}, "1.5"),
        ({"max_new_tokens": True}, "True"),
        ({"batch_size": 0}, "0"),
    ],
)
def test_answer_batch_counts_are_typed_errors_naming_the_value(
    kwargs: dict[str, Any], named: str
) -> None:
    """Before: ``'<' not supported`` TypeErrors, and 1.5 / True generated 2 / 1 tokens."""
    from semtoken_lab.reader import LocalReader

    bare = LocalReader.__new__(LocalReader)  # the checks run before any model use
    with pytest.raises(InvalidInputError, match=re.escape(named)):
        bare.answer_batch([QUESTION], [CONTEXT], **kwargs)


def test_answer_batch_refuses_one_string_as_the_examples() -> None:
    """Before: ``answer_batch("ab", "cd")`` answered two questions, ``a`` and ``b``."""
    from semtoken_lab.reader import LocalReader

    bare = LocalReader.__new__(LocalReader)
    with pytest.raises(InvalidInputError, match="questions must be a sequence"):
        bare.answer_batch("ab", "cd")


def test_prompt_options_string_or_more_than_26_are_typed_errors() -> None:
    """Before: a string's characters became options A, B, C; 27 options an IndexError."""
    from semtoken_lab.reader.prompts import PROMPTS

    tpl = PROMPTS["multiple_choice"]
    with pytest.raises(InvalidInputError, match="'abc'"):
        tpl.messages(QUESTION, CONTEXT, "abc")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="got 27"):
        tpl.messages(QUESTION, CONTEXT, [f"option {i}" for i in range(27)])
    text = tpl.messages(QUESTION, CONTEXT, [f"o{i}" for i in range(26)])[-1]["content"]
    assert "Z. o25" in text


def test_resolve_device_refuses_strings_torch_cannot_parse() -> None:
    """Before: ``gpu`` passed and failed in ``model.to`` after the model loaded; ``cuda:x`` was a
    ValueError from ``int``."""
    from semtoken_lab.reader.placement import resolve_device

    for bad in ("gpu", "", "cuda:x", None):
        with pytest.raises(ConfigError, match="unknown device"):
            resolve_device(bad)  # type: ignore[arg-type]
    assert resolve_device("cpu") == "cpu"


# ---------------------------------------------------------------- metrics
def test_mc_letter_past_d_picks_that_option() -> None:
    """Before: only A-D were letters, so a bare ``E`` fell back to text overlap (the first
    option) and scored 0 although the prompt offered ``E.``."""
    from semtoken_lab.eval.metrics import mc_accuracy_score

    opts = ("red", "green", "blue", "black", "white")
    assert mc_accuracy_score("E", "white", options=opts) == 1.0
    assert mc_accuracy_score("(e) white", "white", options=opts) == 1.0
    assert mc_accuracy_score("D", "black", options=opts) == 1.0
    assert mc_accuracy_score("E", "black", options=opts[:4]) == 0.0  # no fifth option


# ---------------------------------------------------------------- eval runner
class _FakeReader:
    """Answers with the start of its context; every log-likelihood is -1."""

    def answer_loglik_batch(self, qs: Any, cs: Any, golds: Any, **_: Any) -> list[Any]:
        return [SimpleNamespace(per_token=-1.0, total=-1.0) for _ in qs]

    def answer(self, q: str, c: str, **_: Any) -> Any:
        return SimpleNamespace(
            text=c[:40],
            prompt_tokens=1,
            prefill_ms=0.0,
            ttft_ms=0.0,
            decode_ms_per_token=0.0,
            new_tokens=1,
            kv_bytes=0,
        )


def _run(tmp_path: Path, examples: list[Any]) -> list[Any]:
    from semtoken_lab.eval.method_env import MethodEnv
    from semtoken_lab.eval.records import read_records
    from semtoken_lab.eval.run_config import RunConfig
    from semtoken_lab.eval.runner import Runner

    cfg = RunConfig(
        data=("unused",), out=str(tmp_path), methods=("none",), generate=True, progress=False
    )
    env = MethodEnv()
    env.count = lambda text: len(text.split())  # type: ignore[method-assign]
    Runner(cfg, reader=_FakeReader(), env=env).run(examples)
    return read_records(tmp_path / "examples.jsonl")


def test_examples_with_one_id_in_two_datasets_read_their_own_context(tmp_path: Path) -> None:
    """Before: contexts were keyed by id alone, so ``alpha/0`` was read (and scored) with
    ``beta/0``'s context."""
    from semtoken_lab.eval.data import Example

    alpha = Example("0", "alpha", "Alpha says the answer is apple.", "Fruit?", ("apple",))
    beta = Example("0", "beta", "Beta says the answer is banana.", "Fruit?", ("banana",))
    recs = {r.dataset: r for r in _run(tmp_path, [alpha, beta])}
    assert recs["alpha"].prediction is not None and recs["alpha"].prediction.startswith("Alpha")
    assert recs["alpha"].gold_in_full and recs["beta"].gold_in_full
    with pytest.raises(InvalidInputError, match="'0' appears twice in dataset 'alpha'"):
        _run(tmp_path / "dup", [alpha, alpha])


# ---------------------------------------------------------------- kv-eval resume
def test_kv_eval_resume_survives_a_torn_line_and_reruns_a_partial_example(
    tmp_path: Path,
) -> None:
    """Before: a line torn by a kill made every resume fail with ``JSONDecodeError``; an example
    with only some of its records on disk counted as done."""
    from semtoken_lab.eval.kv_eval import KVEvalConfig, plan, read_records, run_kv_eval

    data = tmp_path / "d.jsonl"
    rows = [
        {"id": i, "dataset": "d", "context": "Some text.", "question": "Q?", "answers": ["x"]}
        for i in ("a", "b", "c")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "run"
    cfg = KVEvalConfig(
        data=(str(data),), out=str(out), budgets=(0.5,), policies=("streaming",),
        prompt_ratios=(), combine=(),
    )  # fmt: skip
    methods = [run.method for runs in plan(cfg).values() for run in runs]
    seen: list[str] = []

    class Evaluator:
        def example(self, ex: Any) -> list[dict[str, Any]]:
            seen.append(ex.id)
            return [_kv_record(ex.id, m) for m in methods]

    done_a = "".join(json.dumps(_kv_record("a", m)) + "\n" for m in methods)
    partial_b = json.dumps(_kv_record("b", methods[0])) + "\n"
    out.mkdir()
    (out / "records.jsonl").write_text(done_a + partial_b + '{"id": "c", "met', encoding="utf-8")
    run_kv_eval(cfg, Evaluator())  # type: ignore[arg-type]
    assert seen == ["b", "c"]
    recs = read_records(out)
    assert {r["id"] for r in recs} == {"a", "b", "c"}
    assert (out / "summary.json").is_file()


def _kv_record(ex_id: str, method: str) -> dict[str, Any]:
    return {
        "id": ex_id, "dataset": "d", "method": method, "ll_total": -1.0, "ll_after_first": -0.5,
        "answer_tokens": 2, "logprobs": [-0.5, -0.5], "steps": 1, "kv_mean_bytes": 1.0,
        "kv_peak_bytes": 1, "prefill_kv_bytes": 1, "decode_s": 0.1, "policy_s": 0.0,
        "prefill_s": 0.1, "prompt_tokens": 10, "protected_tokens": 5, "budget_tokens": 5,
        "n_spans": 1, "evicted_spans": 0, "evictions": 0, "policy": "none", "budget": 1.0,
    }  # fmt: skip


# ---------------------------------------------------------------- the real reader
@pytest.mark.slow
def test_answer_budget_filling_the_window_is_a_typed_error(reader) -> None:  # type: ignore[no-untyped-def]
    """Before: ``max_new_tokens`` >= the window emptied the prompt (a reshape RuntimeError in
    the model) or silently dropped the context and cut the chat template's head."""
    window = reader.max_context_tokens
    for reserve in (window, window - 10, 10**6):
        with pytest.raises(InvalidInputError, match="without its context"):
            reader.prompt_ids(QUESTION, CONTEXT, reserve=reserve)
    with pytest.raises(InvalidInputError, match=f"{10**6} kept for the answer"):
        reader.answer(QUESTION, CONTEXT, max_new_tokens=10**6)
    ids = reader.prompt_ids(QUESTION, CONTEXT, reserve=window - 200)  # still fits: unchanged
    assert ids == reader.prompt_ids(QUESTION, CONTEXT)


@pytest.mark.slow
def test_loglik_batch_size_zero_is_a_typed_error(reader) -> None:  # type: ignore[no-untyped-def]
    """Before: ``ValueError: range() arg 3 must not be zero``."""
    with pytest.raises(InvalidInputError, match="batch_size must be an int >= 1, got 0"):
        reader.answer_loglik_batch([QUESTION], [CONTEXT], ["blue"], batch_size=0)


@pytest.mark.slow
def test_budgeted_generate_checks_max_new_tokens(reader) -> None:  # type: ignore[no-untyped-def]
    """Before: ``kv.generate(max_new_tokens=0)`` prefilled and returned one token; a huge one
    gave a misleading "KV budget ... smaller than" ConfigError."""
    from semtoken_lab.reader.kv_budget import KVBudget
    from semtoken_lab.reader.kv_generation import BudgetedGeneration

    gen = BudgetedGeneration(reader, spans=sentence_spans)
    for bad in (0, -1):
        with pytest.raises(InvalidInputError, match=f"got {bad}"):
            gen.generate(QUESTION, CONTEXT, max_new_tokens=bad, config=KVBudget(1.0, "none"))
    with pytest.raises(InvalidInputError, match="without its context"):
        gen.generate(QUESTION, CONTEXT, max_new_tokens=10**6, config=KVBudget(0.9, "streaming"))
