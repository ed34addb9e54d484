"""Loaders: the shared JSONL sets and LongBench-schema files (built in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from semtoken_lab.eval.data import (
    LONGBENCH_METRIC,
    detect_format,
    from_longbench,
    load_examples,
    write_longbench,
)

from semtoken_rag.errors import InvalidInputError


def test_narrativeqa_loader(shared_data: Path) -> None:
    exs = load_examples([shared_data / "narrativeqa" / "test.jsonl"], limit=3)
    assert len(exs) == 3
    ex = exs[0]
    assert ex.dataset == "narrativeqa" and ex.metric == "qa_f1" and ex.task_family == "qa"
    assert len(ex.answers) == 2 and ex.context and ex.question.endswith("?")


def test_quality_is_multiple_choice(shared_data: Path) -> None:
    ex = load_examples([shared_data / "quality" / "test.jsonl"], limit=1)[0]
    assert ex.task_family == "multiple_choice" and ex.metric == "mc_accuracy"
    assert len(ex.options) == 4 and ex.answers[0] in ex.options


def test_leval_tasks(shared_data: Path) -> None:
    fin = load_examples([shared_data / "leval" / "financial_qa.jsonl"], limit=1)[0]
    assert fin.dataset == "leval/financial_qa" and fin.metric == "qa_f1"
    gov = load_examples([shared_data / "leval" / "gov_report_summ.jsonl"], limit=1)[0]
    assert gov.metric == "rouge" and gov.task_family == "summarization"
    tpo = load_examples([shared_data / "leval" / "tpo.jsonl"], limit=1)[0]
    assert tpo.task_family == "multiple_choice" and len(tpo.options) >= 2


def test_loogle_and_hotpot(shared_data: Path) -> None:
    lg = load_examples([shared_data / "loogle" / "shortdep_qa.jsonl"], limit=1)[0]
    assert lg.dataset.startswith("loogle") and "evidence" in lg.extra
    hp = load_examples([shared_data / "hotpotqa_dev_sample"], limit=2)
    assert len(hp) == 2 and hp[0].dataset == "hotpotqa_dev_sample"


def test_longbench_roundtrip_from_shared(shared_data: Path, tmp_path: Path) -> None:
    src = load_examples([shared_data / "narrativeqa" / "test.jsonl"], limit=4)
    path = tmp_path / "narrativeqa.jsonl"
    assert write_longbench(src, path) == 4
    row = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert set(row) == {
        "input",
        "context",
        "answers",
        "length",
        "dataset",
        "language",
        "all_classes",
        "_id",
    }
    assert detect_format(row) == "longbench"
    back = load_examples([path])
    assert [e.id for e in back] == [e.id for e in src]
    assert back[0].question == src[0].question and back[0].answers == src[0].answers
    assert back[0].metric == "qa_f1" and back[0].context == src[0].context
    # an explicit --format gives the same
    assert load_examples([path], fmt="longbench")[0] == back[0]


@pytest.mark.parametrize(
    ("dataset", "metric", "family"),
    [
        ("gov_report", "rouge", "summarization"),
        ("qmsum", "rouge", "summarization"),
        ("trec", "classification", "qa"),
        ("passage_retrieval_en", "retrieval", "qa"),
        ("passage_count", "count", "qa"),
        ("lcc", "code_sim", "qa"),
        ("repobench-p", "code_sim", "qa"),
        ("multifieldqa_zh", "qa_f1_zh", "qa"),
        ("vcsum", "rouge_zh", "summarization"),
        ("hotpotqa_e", "qa_f1", "qa"),
    ],
)
def test_longbench_metric_table(dataset: str, metric: str, family: str) -> None:
    ex = from_longbench(
        {
            "input": "q",
            "context": "c",
            "answers": ["a"],
            "length": 1,
            "dataset": dataset,
            "language": "en",
            "all_classes": ["x", "y"],
            "_id": "1",
        }
    )
    assert ex.metric == metric and ex.task_family == family
    assert ex.all_classes == ("x", "y")
    assert LONGBENCH_METRIC["narrativeqa"] == "qa_f1"


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        load_examples([tmp_path / "missing.jsonl"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"foo": 1}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError):
        load_examples([bad])
