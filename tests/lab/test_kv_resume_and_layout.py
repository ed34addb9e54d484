"""Two KV-budget fixes: kv-eval resume keyed by ``(dataset, id)``, and the prompt layout
locating the context where the template placed it.

Each test of a fix failed on the code before it: a resume skipped a second dataset's example
that shared an id with a finished one, and ``layout_prompt`` pointed at an earlier copy of the
context text (in the system turn) instead of the context itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semtoken_rag.errors import InvalidInputError


# ---------------------------------------------------------------- kv-eval resume
def _write_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text(
        "".join(
            json.dumps({"id": i, "dataset": ds, "context": "Some text.", "question": "Q?",
                        "answers": ["x"]}) + "\n"
            for ds, i in rows
        ),
        encoding="utf-8",
    )  # fmt: skip


def _resume(tmp_path: Path, on_disk: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Run kv-eval over datasets ``alpha`` and ``beta`` (both with id ``"0"``) with ``on_disk``
    already in records.jsonl; the ``(dataset, id)`` of the examples run again."""
    from semtoken_lab.eval.kv_eval import KVEvalConfig, plan, run_kv_eval

    tmp_path.mkdir(exist_ok=True)
    _write_rows(tmp_path / "a.jsonl", [("alpha", "0")])
    _write_rows(tmp_path / "b.jsonl", [("beta", "0")])
    out = tmp_path / "run"
    cfg = KVEvalConfig(
        data=(str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")), out=str(out),
        budgets=(0.5,), policies=("streaming",), prompt_ratios=(), combine=(),
    )  # fmt: skip
    methods = [run.method for runs in plan(cfg).values() for run in runs]
    seen: list[tuple[str, str]] = []

    class Evaluator:
        def example(self, ex: Any) -> list[dict[str, Any]]:
            seen.append((ex.dataset, ex.id))
            return [_kv_record(ex.id, ex.dataset, m) for m in methods]

    out.mkdir()
    lines = [json.dumps(r) + "\n" for r in on_disk]
    (out / "records.jsonl").write_text("".join(lines), encoding="utf-8")
    run_kv_eval(cfg, Evaluator())  # type: ignore[arg-type]
    return seen


def _methods() -> list[str]:
    from semtoken_lab.eval.kv_eval import CLOSED, FULL

    return [FULL, CLOSED, "kv-streaming@0.5"]


def test_kv_eval_resume_keeps_apart_datasets_sharing_an_id(tmp_path: Path) -> None:
    """Before: alpha's finished "0" made beta's "0" look done, so beta was never run."""
    done_alpha = [_kv_record("0", "alpha", m) for m in _methods()]
    assert _resume(tmp_path, done_alpha) == [("beta", "0")]


def test_kv_eval_resume_reads_old_records_without_a_dataset(tmp_path: Path) -> None:
    """Old runs wrote infeasible records with no dataset: they still count, by id alone."""
    from semtoken_lab.eval.kv_eval import FULL, NO_ANSWER

    old_no_answer = {"id": "0", "method": FULL, "infeasible": NO_ANSWER}
    assert _resume(tmp_path, [old_no_answer]) == []
    full, closed, kv = _methods()
    mixed = [_kv_record("0", "alpha", full), _kv_record("0", "alpha", closed)]
    mixed.append({"id": "0", "method": kv, "infeasible": "budget below the question"})
    assert _resume(tmp_path / "mixed", mixed) == [("beta", "0")]


def test_kv_eval_infeasible_records_name_their_dataset(tmp_path: Path) -> None:
    from semtoken_lab.eval.kv_eval import KVEvalConfig, read_records, run_kv_eval

    _write_rows(tmp_path / "a.jsonl", [("alpha", "0")])
    cfg = KVEvalConfig(data=(str(tmp_path / "a.jsonl"),), out=str(tmp_path / "run"))

    class NoAnswer:
        def example(self, ex: Any) -> list[dict[str, Any]]:
            return []

    run_kv_eval(cfg, NoAnswer())  # type: ignore[arg-type]
    assert [r["dataset"] for r in read_records(tmp_path / "run")] == ["alpha"]


def _kv_record(ex_id: str, dataset: str, method: str) -> dict[str, Any]:
    return {
        "id": ex_id, "dataset": dataset, "method": method, "ll_total": -1.0,
        "ll_after_first": -0.5, "answer_tokens": 2, "logprobs": [-0.5, -0.5], "steps": 1,
        "kv_mean_bytes": 1.0, "kv_peak_bytes": 1, "prefill_kv_bytes": 1, "decode_s": 0.1,
        "policy_s": 0.0, "prefill_s": 0.1, "prompt_tokens": 10, "protected_tokens": 5,
        "budget_tokens": 5, "n_spans": 1, "evicted_spans": 0, "evictions": 0, "policy": "none",
        "budget": 1.0,
    }  # fmt: skip


# ---------------------------------------------------------------- prompt layout
class _WordTokenizer:
    """A fast-tokenizer stand-in: words and whitespace runs, with character offsets."""

    is_fast = True

    def __init__(self, chat_template: str | None = None) -> None:
        self.chat_template = chat_template

    def __call__(self, text: str, **_: Any) -> dict[str, list[Any]]:
        spans = [m.span() for m in re.finditer(r"\S+|\s+", text)]
        return {"input_ids": list(range(len(spans))), "offset_mapping": spans}

    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return "\n".join(f"<{m['role']}> {m['content'].upper()}" for m in messages)


class _Reader:
    def __init__(self, tokenizer: Any, system: str | None) -> None:
        from semtoken_lab.reader.prompts import PROMPTS, PromptTemplate

        qa = PROMPTS["qa"]
        self.tokenizer = tokenizer
        self.prompts = {"qa": PromptTemplate(qa.user, qa.closed_book, system)}

    def fit_context(self, question: str, context: str, **_: Any) -> str:
        return context


@pytest.mark.parametrize("context", ["the", "Read the text", "the text", "  the text\n"])
def test_layout_finds_the_context_not_an_earlier_copy(context: str) -> None:
    """Before: ``prompt.find`` matched the context's words in the system turn."""
    from semtoken_lab.reader.kv_layout import layout_prompt
    from semtoken_lab.reader.prompts import build_prompt

    reader = _Reader(_WordTokenizer(), system="Read the text and answer.")
    lay = layout_prompt(reader, "Who?", context)
    prompt = build_prompt(reader.tokenizer, "qa", "Who?", context, None, reader.prompts)
    body = context.strip()  # a context passed with surrounding whitespace: its text is located
    at = prompt.index(body, prompt.index("Context:") + len("Context:"))
    offsets = np.asarray(reader.tokenizer(prompt)["offset_mapping"])
    assert lay.context == body
    assert offsets[lay.context_start, 0] == at
    assert offsets[lay.context_end - 1, 1] == at + len(body)
    assert prompt[at : at + len(body)] == body


def test_layout_refuses_a_template_that_rewrites_the_context() -> None:
    from semtoken_lab.reader.kv_layout import layout_prompt

    reader = _Reader(_WordTokenizer(chat_template="upper"), system=None)
    with pytest.raises(InvalidInputError, match="does not appear verbatim"):
        layout_prompt(reader, "Who?", "the sky")


@pytest.mark.slow
def test_layout_with_real_template_skips_the_system_turn_copy(local_reader: Any) -> None:
    """SmolLM2's default system turn names "Hugging Face"; a context of those words must be
    located in the user turn."""
    from semtoken_lab.reader.kv_layout import layout_prompt

    reader, context = local_reader(device="cpu", dtype="float32"), "Hugging Face"
    lay = layout_prompt(reader, "Who?", context)
    tok = reader.tokenizer
    assert tok.decode(list(lay.ids[: lay.context_start])).rstrip().endswith("Context:")
    assert tok.decode(list(lay.ids[lay.context_start : lay.context_end])).strip() == context
    assert list(lay.ids) == reader.prompt_ids("Who?", context)
