"""The adaptive budget (``--ratio auto``) against fixed ratios at the same tokens, from a run.

For one run folder (``examples.jsonl`` of ``semtoken-rag eval``) holding ``none``,
``closed-book``, ``semtoken`` at ``auto`` and at fixed ratios, and optionally baselines at the
ratio ``auto`` reached on average:

* **where the budget goes**: the distribution of the ratios ``auto`` achieved, overall and per
  question type (summary requests vs specific questions, as the engine classifies them);
* **equal mean tokens**: paired differences of LL retained and gold recall between ``auto`` and
  each method at the matched ratio (the fixed ratio closest to auto's mean);
* **equal LL retained**: the fixed ratio at which fixed-ratio SemToken's retained curve
  (interpolated between the ratios run) reaches auto's retained, and the share of tokens
  ``auto`` saves against it;
* a plot of each example's LL retained against its achieved ratio.

Run ``python -m semtoken_lab.eval.auto_report RUN_DIR [RUN_DIR...]``: prints markdown, writes
``auto_budget.json`` and ``auto_budget.png`` into each folder.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from semtoken_rag.queries import is_summary_request

from semtoken_lab.eval.data import load_examples
from semtoken_lab.eval.records import AUTO, ExampleRecord, read_records
from semtoken_lab.eval.stats import mean_se, paired_delta, retained_fraction

Table = dict[tuple[str, float], dict[str, ExampleRecord]]


def _table(records: list[ExampleRecord]) -> Table:
    out: Table = defaultdict(dict)
    for r in records:
        if r.answer_loglik is not None:
            out[(r.method, r.ratio)][r.example_id] = r
    return out


def _anchors(t: Table) -> tuple[dict[str, float], dict[str, float]]:
    """Per-example closed-book and full-context LL."""
    closed = {i: float(r.answer_loglik or 0.0) for i, r in t[("closed-book", 0.0)].items()}
    full = {i: float(r.answer_loglik or 0.0) for i, r in t[("none", 1.0)].items()}
    return closed, full


def _retained(recs: dict[str, ExampleRecord], ids: list[str], closed: dict, full: dict) -> Any:
    return retained_fraction(
        [float(recs[i].answer_loglik or 0.0) for i in ids],
        [closed[i] for i in ids],
        [full[i] for i in ids],
    )


def _versus(auto: dict, other: dict, ids: list[str], closed: dict, full: dict) -> dict:
    """Paired differences auto - other over ``ids`` (LL retained, recall)."""
    ybar = float(np.mean([full[i] - closed[i] for i in ids]))
    d = paired_delta(
        [float(auto[i].answer_loglik) for i in ids], [float(other[i].answer_loglik) for i in ids]
    )
    rec = [
        i for i in ids if auto[i].answer_recall is not None and other[i].answer_recall is not None
    ]
    dr = paired_delta(
        [float(bool(auto[i].answer_recall)) for i in rec],
        [float(bool(other[i].answer_recall)) for i in rec],
    )
    return {
        "retained_delta": d.value / ybar,
        "retained_delta_se": d.se / abs(ybar),
        "recall_delta": dr.value,
        "recall_delta_se": dr.se,
        "n": len(ids),
        "other_ratio": float(np.mean([other[i].achieved_ratio for i in ids])),
    }


def _equal_retained(t: Table, ids: list[str], closed: dict, full: dict, target: float) -> float:
    """The fixed ratio at which fixed SemToken reaches ``target`` retained (interpolated)."""
    points = sorted(
        (
            float(np.mean([recs[i].achieved_ratio for i in ids])),
            _retained(recs, ids, closed, full).value,
        )
        for (m, r), recs in t.items()
        if m == "semtoken" and r != AUTO and all(i in recs for i in ids)
    )
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if len(xs) < 2 or target > max(ys):
        return math.nan
    return float(np.interp(target, np.maximum.accumulate(ys), xs))


def _questions(run: Path) -> dict[str, str]:
    cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    return {ex.id: ex.question for ex in load_examples(cfg["data"])}


def analyse(run: Path) -> dict[str, Any]:
    """Everything the module docstring lists, for one run folder."""
    t = _table(read_records(run / "examples.jsonl"))
    closed, full = _anchors(t)
    auto = t[("semtoken", AUTO)]
    ids = sorted(i for i in auto if i in closed and i in full)
    ratios = np.asarray([auto[i].achieved_ratio for i in ids])
    questions = _questions(run)
    kinds = {i: "summary" if is_summary_request(questions.get(i)) else "specific" for i in ids}
    out: dict[str, Any] = {
        "run": str(run),
        "n": len(ids),
        "auto_ratio": mean_se(ratios).__dict__,
        "auto_retained": _retained(auto, ids, closed, full).__dict__,
        "ratio_quantiles": {f"p{q}": float(np.percentile(ratios, q)) for q in (10, 25, 50, 75, 90)},
        "by_kind": {
            k: {
                "n": int(sum(v == k for v in kinds.values())),
                "mean_ratio": float(
                    np.mean([auto[i].achieved_ratio for i in ids if kinds[i] == k])
                ),
            }
            for k in sorted(set(kinds.values()))
        },
    }
    target = out["auto_retained"]["value"]
    eq = _equal_retained(t, ids, closed, full, target)
    out["equal_retained_ratio"] = eq
    out["token_saving_at_equal_retained"] = 1 - out["auto_ratio"]["value"] / eq if eq else math.nan
    out["versus"] = {
        f"{m}@{r:g}": _versus(auto, recs, [i for i in ids if i in recs], closed, full)
        for (m, r), recs in t.items()
        if r not in (AUTO, 0.0, 1.0) and m not in ("none", "closed-book")
    }
    return out


def plot(run: Path, path: Path) -> None:
    """Per-example LL retained (clipped to [-1, 2]) against achieved ratio, auto vs fixed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = _table(read_records(run / "examples.jsonl"))
    closed, full = _anchors(t)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (m, r), recs in sorted(t.items()):
        if m != "semtoken":
            continue
        lls = {i: rec.answer_loglik for i, rec in recs.items() if rec.answer_loglik is not None}
        ids = [i for i in lls if i in closed and i in full and full[i] != closed[i]]
        x = [recs[i].achieved_ratio for i in ids]
        y = np.clip([(lls[i] - closed[i]) / (full[i] - closed[i]) for i in ids], -1, 2)
        ax.scatter(x, y, s=8, alpha=0.6, label="auto" if r == AUTO else f"fixed {r:g}")
    ax.set_xlabel("achieved ratio")
    ax.set_ylabel("LL retained (per example, clipped)")
    ax.set_title(run.name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(res: dict[str, Any]) -> str:
    """One block of markdown for ``res``."""
    a, q = res["auto_ratio"], res["ratio_quantiles"]
    lines = [
        f"**{Path(res['run']).name}** (n={res['n']}): auto kept {a['value']:.3f} ± {a['se']:.3f} "
        f"of the tokens (p10 {q['p10']:.2f}, median {q['p50']:.2f}, p90 {q['p90']:.2f}); "
        f"LL retained {res['auto_retained']['value']:.3f} ± {res['auto_retained']['se']:.3f}; "
        + ", ".join(
            f"{k}: n={v['n']}, mean ratio {v['mean_ratio']:.3f}" for k, v in res["by_kind"].items()
        )
        + f"; fixed SemToken reaches that retained at ratio {res['equal_retained_ratio']:.3f} "
        f"(auto keeps {res['token_saving_at_equal_retained']:+.0%} fewer tokens).",
        "",
        "| vs | its ratio | Δ LL retained (auto − it) | Δ recall |",
        "|---|---:|---:|---:|",
    ]
    for name, v in sorted(res["versus"].items()):
        lines.append(
            f"| {name} | {v['other_ratio']:.3f} | {v['retained_delta']:+.3f} ± "
            f"{v['retained_delta_se']:.3f} | {v['recall_delta']:+.3f} ± "
            f"{v['recall_delta_se']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Analyse each run folder given on the command line."""
    for arg in argv if argv is not None else sys.argv[1:]:
        run = Path(arg)
        res = analyse(run)
        (run / "auto_budget.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
        plot(run, run / "auto_budget.png")
        print(markdown(res), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
