"""The KV report keys examples by ``(dataset, id)``, as the kv-eval resume does.

Before the fix the report grouped records by id alone, so two datasets' examples sharing an id
(both ``"0"``) merged: one dataset's records completed, or were scored with, the other's.
"""

from __future__ import annotations

from typing import Any

import pytest

FULL, CLOSED, KV = "full", "closed-book", "kv-streaming@0.5"


def _rec(dataset: str | None, method: str, ll: float = -1.0, ex_id: str = "0") -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": ex_id, "method": method, "ll_total": ll, "ll_after_first": ll / 2,
        "answer_tokens": 2, "steps": 1, "kv_mean_bytes": 1.0, "kv_peak_bytes": 1,
        "decode_s": 0.1, "policy_s": 0.0, "prompt_tokens": 10,
    }  # fmt: skip
    if dataset is not None:
        rec["dataset"] = dataset
    return rec


def _example(dataset: str, kv_ll: float) -> list[dict[str, Any]]:
    """Every method of one example: closed-book -3, full -1, the KV run ``kv_ll``."""
    return [_rec(dataset, FULL, -1.0), _rec(dataset, CLOSED, -3.0), _rec(dataset, KV, kv_ll)]


def _rows(records: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], Any], int]:
    from semtoken_lab.eval.kv_report import summarize

    rows, _, dropped = summarize(records)
    return {(r.dataset, r.method): r for r in rows}, dropped


def test_an_incomplete_example_is_not_completed_by_another_datasets_records() -> None:
    """Before: beta's "0" (no KV record yet) borrowed alpha's and was reported, 0 dropped."""
    records = [*_example("alpha", -2.0), _rec("beta", FULL), _rec("beta", CLOSED, -3.0)]
    rows, dropped = _rows(records)
    assert dropped == 1
    assert {ds for ds, _ in rows} == {"alpha"}
    assert rows[("alpha", KV)].n == 1


def test_scores_stay_with_their_own_dataset() -> None:
    """Before: the two "0"s merged into one example (the later records won), one row set."""
    rows, dropped = _rows([*_example("alpha", -2.0), *_example("beta", -1.5)])
    assert dropped == 0
    assert rows[("alpha", KV)].ll == -2.0
    assert rows[("beta", KV)].ll == -1.5
    assert rows[("alpha", KV)].retained == pytest.approx(0.5)
    assert rows[("beta", KV)].retained == pytest.approx(0.75)
    assert rows[("alpha", KV)].n == rows[("beta", KV)].n == 1


def test_one_datasets_infeasible_example_does_not_drop_the_others() -> None:
    """Before: beta's infeasible "0" dropped alpha's complete "0" too (no rows at all)."""
    infeasible = {"id": "0", "dataset": "beta", "method": KV, "infeasible": "budget"}
    records = [*_example("alpha", -2.0), _rec("beta", FULL), _rec("beta", CLOSED), infeasible]
    rows, dropped = _rows(records)
    assert dropped == 1
    assert {ds for ds, _ in rows} == {"alpha"}


def test_an_old_infeasible_record_without_a_dataset_counts_for_every_dataset() -> None:
    """Old runs wrote infeasible records with no dataset; the resume counts them for each
    dataset's example with that id, so the report drops each of those examples."""
    old = {"id": "0", "method": KV, "infeasible": "budget"}
    both = [_rec(ds, m) for ds in ("alpha", "beta") for m in (FULL, CLOSED)]
    assert _rows([*both, old]) == ({}, 2)
    rows, dropped = _rows([*_example("alpha", -2.0), _rec(None, FULL, ex_id="1")])
    assert (dropped, rows[("alpha", KV)].n) == (1, 1)
