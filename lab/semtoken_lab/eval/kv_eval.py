"""Evaluating generation-time KV budgets: answer log-likelihood, KV bytes and decode speed.

Protocol (one example):

1. The context is cut (middle) so the prompt plus the capped gold answer fit ``max_prompt_tokens``;
   every method reads this same text.
2. Each prompt variant is prefilled once: the full context, no context (closed book), and the
   SemToken-compressed context at each prompt ratio.  Every method starting from that prompt gets
   its own copy of the prefilled cache (the budget acts during decoding, after a full prefill).
3. The gold answer (first reference, capped at ``max_answer_tokens`` reader tokens) is fed one
   token at a time (teacher forcing), so eviction acts as while generating; the log-probability
   of every gold token is summed.  The first token is read from the full prefill in every method
   (as in generation), so the report also gives the sum over the other tokens.
4. KV bytes are measured from the cache tensors after every step; decode time is the wall time of
   the steps, the policy's own work (query scoring, eviction copies) included.  Methods run in a
   seeded random order per example so load changes on a shared machine hit all of them alike.

Methods: ``full`` (no eviction, the ceiling), ``closed-book`` (the floor), ``kv-<policy>@<b>``
(budget ``b`` of the prompt), ``prompt@<r>`` (SemToken prompt compression to ``r``) and
``prompt@<r>+kv-<policy>@<b>`` (both).  Records go to ``records.jsonl`` (resumable), aggregates
to ``summary.json`` and ``report.md`` (:mod:`semtoken_lab.eval.kv_report`).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from semtoken_rag.errors import ConfigError, InvalidInputError

from semtoken_lab.eval.data import Example, load_examples
from semtoken_lab.eval.records import cut_torn_tail, read_jsonl, record_example

logger = logging.getLogger(__name__)

FULL, CLOSED = "full", "closed-book"
#: The ``infeasible`` reason of the one record of an example without a usable gold answer.
NO_ANSWER = "no answer"


@dataclass(frozen=True)
class KVEvalConfig:
    """One KV-budget evaluation run.

    Attributes:
        data: JSONL files or folders (see :func:`semtoken_lab.eval.data.load_examples`).
        out: Output folder.
        limit: Examples per file (after ``per_doc``).
        per_doc: Questions per document at most.
        budgets: KV budgets (fractions of the prompt).
        policies: Policies evaluated at every budget.
        prompt_ratios: SemToken prompt-compression ratios evaluated alone.
        combine: ``(prompt ratio, KV budget)`` pairs evaluated together.
        combine_policies: Policies used in the combined runs.
        max_answer_tokens: Gold answers are capped at this many reader tokens.
        max_prompt_tokens: Contexts are cut so prompt + answer fit (default: the reader's).
        kv_options: Extra :class:`~semtoken_lab.reader.kv_budget.KVBudget` fields.
        reader: Reader model.
        reader_dtype: Reader dtype.
        seed: Seed of the per-example method order.
    """

    data: tuple[str, ...]
    out: str
    limit: int | None = None
    per_doc: int | None = None
    budgets: tuple[float, ...] = (0.5, 0.25)
    policies: tuple[str, ...] = ("semtoken", "semtoken-cos", "streaming", "snapkv")
    prompt_ratios: tuple[float, ...] = (0.5, 0.25)
    combine: tuple[tuple[float, float], ...] = ((0.5, 0.5),)
    combine_policies: tuple[str, ...] = ("semtoken",)
    max_answer_tokens: int = 64
    max_prompt_tokens: int | None = None
    kv_options: dict[str, Any] = field(default_factory=dict)
    reader: str = "smollm2"
    reader_dtype: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        from semtoken_lab.reader.kv_budget import KV_POLICIES

        for name in ("policies", "combine_policies"):
            if isinstance(getattr(self, name), str):  # one name, never its characters
                raise ConfigError(f"{name} must be a sequence of policy names, got one string")
        bad = [p for p in (*self.policies, *self.combine_policies) if p not in KV_POLICIES]
        if bad:
            raise ConfigError(f"unknown kv policies {bad}; choose from {sorted(KV_POLICIES)}")
        ratios = [*self.budgets, *self.prompt_ratios, *(x for pair in self.combine for x in pair)]
        if any(not 0.0 < r <= 1.0 for r in ratios):
            raise ConfigError(f"budgets and ratios must be in (0, 1], got {ratios}")
        if self.max_answer_tokens < 2:
            raise ConfigError("max_answer_tokens must be >= 2 (one decoding step at least)")


@dataclass(frozen=True)
class _Run:
    method: str
    policy: str
    budget: float  # 1.0 with policy "none"


def _kv_runs(cfg: KVEvalConfig, prefix: str, pairs: Iterable[tuple[str, float]]) -> list[_Run]:
    return [_Run(f"{prefix}kv-{p}@{b:g}", p, b) for p, b in pairs]


def plan(cfg: KVEvalConfig) -> dict[str, list[_Run]]:
    """Prompt variant (``full``, ``closed``, ``prompt@r``) -> the runs starting from it."""
    out: dict[str, list[_Run]] = {
        "closed": [_Run(CLOSED, "none", 1.0)],
        "full": [
            _Run(FULL, "none", 1.0),
            *_kv_runs(cfg, "", ((p, b) for b in cfg.budgets for p in cfg.policies)),
        ],
    }
    for r in sorted({*cfg.prompt_ratios, *(r for r, _ in cfg.combine)}, reverse=True):
        pairs = ((p, b) for rr, b in cfg.combine if rr == r for p in cfg.combine_policies)
        runs = [_Run(f"prompt@{r:g}", "none", 1.0)] if r in cfg.prompt_ratios else []
        out[f"prompt@{r:g}"] = runs + _kv_runs(cfg, f"prompt@{r:g}+", pairs)
    return out


class KVEvaluator:
    """Runs :class:`KVEvalConfig` with one reader and one compressor.

    Args:
        cfg: The run.
        reader: A :class:`~semtoken_lab.reader.LocalReader` (built from ``cfg`` if omitted).
        compressor: A :class:`semtoken_rag.Compressor` (prompt compression and the spans).
    """

    def __init__(self, cfg: KVEvalConfig, reader: Any = None, compressor: Any = None) -> None:
        from semtoken_rag import Compressor, SemTokenConfig

        from semtoken_lab.reader import LocalReader
        from semtoken_lab.reader.kv_generation import BudgetedGeneration
        from semtoken_lab.reader.kv_layout import CompressorSpans

        self.cfg = cfg
        self.reader = reader or LocalReader(cfg.reader, dtype=cfg.reader_dtype)
        self.compressor = compressor or Compressor(SemTokenConfig(count_tokenizer=cfg.reader))
        self.kv = BudgetedGeneration(self.reader, spans=CompressorSpans(self.compressor))
        self.plan = plan(cfg)
        self._rng = random.Random(cfg.seed)

    def _budget(self, run: _Run) -> Any:
        from semtoken_lab.reader.kv_budget import KVBudget

        return KVBudget(run.budget, run.policy, **self.cfg.kv_options)

    def contexts(self, ex: Example, reserve: int) -> dict[str, str]:
        """The context of each prompt variant (all cut from the same fitted text)."""
        fitted = self.reader.fit_context(
            ex.question,
            ex.context,
            task=ex.task_family,
            options=ex.options or None,
            reserve=reserve,
            limit=self.cfg.max_prompt_tokens,
        )
        out = {"full": fitted, "closed": ""}
        for name in self.plan:
            if name.startswith("prompt@"):
                ratio = float(name.split("@", 1)[1])
                out[name] = self.compressor.compress([fitted], ex.question, ratio=ratio).joined()
        return out

    def example(self, ex: Example) -> list[dict[str, Any]]:
        """All methods' records for one example (``[]`` when it has no usable answer)."""
        gold = (ex.answers[0] if ex.answers else "").strip()
        ids = self.reader.tokenizer(gold, add_special_tokens=False)["input_ids"] if gold else []
        ids = [int(i) for i in ids][: self.cfg.max_answer_tokens]
        if len(ids) < 1:
            return []
        contexts = self.contexts(ex, len(ids))
        groups = list(self.plan.items())
        self._rng.shuffle(groups)
        records: list[dict[str, Any]] = []
        for variant, runs in groups:
            records.extend(self._variant(ex, contexts[variant], runs, ids))
        return records

    def _variant(
        self, ex: Example, context: str, runs: list[_Run], ids: list[int]
    ) -> list[dict[str, Any]]:
        kv = self.kv
        policies = sorted({r.policy for r in runs})
        lay = kv.layout(
            ex.question,
            context,
            task=ex.task_family,
            options=ex.options or None,
            reserve=len(ids),
            limit=self.cfg.max_prompt_tokens,
        )
        rows = max(self._budget(r).make_policy().prefill_rows for r in runs)
        out = []
        order = list(runs)
        self._rng.shuffle(order)
        with kv.attached(*policies):
            pre = kv.prefill(lay, rows=rows)
            for run in order:
                try:
                    tf = kv.teacher_force(pre, ids, self._budget(run))
                except ConfigError as exc:  # budget below instruction + question
                    logger.warning("%s %s: %s", ex.id, run.method, exc)
                    out.append(_infeasible(ex, run.method, str(exc)))
                    continue
                out.append(_record(ex, run, lay, pre.seconds, tf))
        return out


def _infeasible(ex: Example, method: str, reason: str) -> dict[str, Any]:
    """The record of a method that could not run; it names the dataset like every record, so
    a resume tells it apart from another dataset's example with the same id."""
    return {"id": ex.id, "dataset": ex.dataset, "method": method, "infeasible": reason}


def _record(ex: Example, run: _Run, lay: Any, prefill_s: float, tf: Any) -> dict[str, Any]:
    tr = tf.trace
    return {
        "id": ex.id,
        "dataset": ex.dataset,
        "method": run.method,
        "policy": run.policy,
        "budget": run.budget,
        "prompt_tokens": lay.prompt_tokens,
        "protected_tokens": lay.protected_tokens,
        "budget_tokens": tr.budget_tokens,
        "answer_tokens": len(tf.logprobs),
        "ll_total": tf.total,
        "ll_after_first": tf.after_first,
        "logprobs": list(tf.logprobs),
        "steps": tr.steps,
        "kv_mean_bytes": tr.mean_kv_bytes,
        "kv_peak_bytes": tr.peak_kv_bytes,
        "prefill_kv_bytes": tr.prefill_kv_bytes,
        "decode_s": tr.decode_s,
        "policy_s": tr.policy_s,
        "prefill_s": prefill_s,
        "n_spans": lay.n_spans,
        "evicted_spans": len(tr.evicted_spans),
        "evictions": len(tr.evictions),
    }


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete records of ``path`` (torn or unreadable lines skipped with a warning)."""
    out = []
    for lineno, rec in read_jsonl(path):
        if isinstance(rec, dict) and "id" in rec and "method" in rec:
            out.append(rec)
        else:
            logger.warning("%s:%d: skipping a line that is not a record", path, lineno)
    return out


def _done(path: Path, methods: set[str]) -> set[tuple[str | None, str]]:
    """``(dataset, id)`` of the examples whose records are all on disk: every planned method,
    or the "no answer" record.

    Why every method: a run killed while writing an example's records leaves some of them;
    that example is run again (the report keeps one record per method).  Why the dataset:
    ids repeat across datasets (as in :func:`semtoken_lab.eval.runner.example_key`).  Records
    written before every record named its dataset (infeasible ones did not) are matched by id
    alone, as before, so an old run still resumes: their methods count for every dataset's
    example with that id, and their key ``(None, id)`` is one :func:`_is_done` accepts.
    """
    if not path.exists():
        return set()
    seen: dict[tuple[str | None, str], set[str]] = {}
    finished: set[tuple[str | None, str]] = set()
    for rec in _read_lines(path):
        key = record_example(rec)
        seen.setdefault(key, set()).add(rec["method"])
        if rec.get("infeasible") == NO_ANSWER:
            finished.add(key)
    for (ds, i), have in seen.items():
        if methods <= have | seen.get((None, i), set()):
            finished.add((ds, i))
    return finished


def _is_done(ex: Example, done: set[tuple[str | None, str]]) -> bool:
    """Whether ``ex`` is finished: its ``(dataset, id)``, or its id in an old record without a
    dataset (see :func:`_done`)."""
    return (ex.dataset, ex.id) in done or (None, ex.id) in done


def read_records(out: str | Path) -> list[dict[str, Any]]:
    """The records of a run folder (a torn last line is skipped with a warning)."""
    path = Path(out) / "records.jsonl"
    if not path.exists():
        raise InvalidInputError(f"no records in {out} (expected {path})")
    return _read_lines(path)


def run_kv_eval(
    cfg: KVEvalConfig,
    evaluator: KVEvaluator | None = None,
    *,
    on_example: Callable[[int, int, str, float], None] | None = None,
) -> Path:
    """Run (or resume) the evaluation; returns the output folder.

    Examples already in ``records.jsonl`` (by ``(dataset, id)``, see :func:`_done`) are
    skipped, so an interrupted run can be resumed.

    Args:
        on_example: Called as ``(done, total, example id, seconds so far)`` after each example.
    """
    from semtoken_lab.eval.kv_report import write_report

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2), encoding="utf-8")
    examples = load_examples(cfg.data, limit=cfg.limit, per_doc=cfg.per_doc)
    path = out / "records.jsonl"
    if path.is_file():
        cut_torn_tail(path)
    done = _done(path, {run.method for runs in plan(cfg).values() for run in runs})
    todo = [ex for ex in examples if not _is_done(ex, done)]
    ev = evaluator or (KVEvaluator(cfg) if todo else None)
    t0 = time.perf_counter()
    for i, ex in enumerate(todo):
        assert ev is not None
        records = ev.example(ex) or [_infeasible(ex, FULL, NO_ANSWER)]
        with path.open("a", encoding="utf-8") as fh:  # one write per example
            fh.write("".join(json.dumps(rec) + "\n" for rec in records))
        logger.info("kv-eval %d/%d %s", i + 1, len(todo), ex.id)
        if on_example is not None:
            on_example(i + 1, len(todo), ex.id, time.perf_counter() - t0)
    write_report(out, read_records(out), cfg)
    return out
