"""The evaluation loop: examples x methods x ratios -> records on disk -> summary, report, plots.

Order of work per example: compress with every pending (method, ratio), then score all the
compressed contexts with the reader in one batched log-likelihood pass, then (optionally)
generate.  Every finished record is appended to ``examples.jsonl`` at once, so a killed run loses
at most the example in flight and ``resume`` recomputes nothing that is on disk.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from semtoken_rag.errors import InvalidInputError

from semtoken_lab.eval.data import Example, load_examples
from semtoken_lab.eval.methods import (
    CHUNK_SEP,
    METHODS,
    RATIO_FREE,
    Method,
    MethodEnv,
    SemTokenMethod,
    build_method,
)
from semtoken_lab.eval.metrics import (
    answer_in_text,
    exact_match_score,
    mc_accuracy_score,
    qa_f1_score,
    rouge_l_score,
    score,
)
from semtoken_lab.eval.records import (
    AUTO,
    ExampleRecord,
    RecordWriter,
    read_records,
    record_key,
    runs_auto,
)

logger = logging.getLogger(__name__)

#: Methods shown as "kept" rows of the density heatmap (the cheap ones), in this order.
HEATMAP_METHODS = ("semtoken", "embed-filter", "semtoken-noquery", "truncate", "random")
#: Tokens generated per task family.
MAX_NEW_TOKENS = {"qa": 32, "multiple_choice": 8, "summarization": 128}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run (written to ``config.json`` in the output folder).

    Attributes:
        data: JSONL files or folders.
        fmt: ``auto``, ``longbench`` or ``shared``.
        mode: ``context`` (each example's own context) or ``rag`` (shared pool + retrieval).
        methods: Method names (see :data:`semtoken_lab.eval.methods.METHODS`).
        ratios: Target ratios of reader tokens kept.
        budget: Absolute token budget instead of ratios (recorded as ``ratio = budget``).
        limit: Examples per data file.
        per_doc: Questions per document at most (spreads a limited run over documents).
        reader: Reader model name.
        reader_dtype: Reader dtype (``auto``, ``float32``, ``bfloat16``, ...).
        out: Output folder.
        resume: Skip (example, method, ratio) keys already in ``examples.jsonl``.
        seed: Seed of the random baseline.
        workers: Examples processed concurrently (threads).
        generate: Generate answers (task metrics, timings); off = log-likelihood + recall only.
        top_k: Chunks retrieved per question in ``rag`` mode.
        chunk_size, chunk_overlap: Word windows of the ``rag`` pool.
        max_context_tokens: Cut every *full* context to this many reader tokens (middle
            truncation) before compressing, for readers with a short window.
        max_answer_words: Gold answers are cut to this many words for the log-likelihood
            (long summaries would otherwise dominate the cost).
        progress: Show a tqdm bar with ETA.
    """

    data: tuple[str, ...]
    out: str
    fmt: str = "auto"
    mode: str = "context"
    methods: tuple[str, ...] = ("none", "closed-book", "embed-filter", "semtoken")
    ratios: tuple[float, ...] = (0.5,)
    budget: int | None = None
    limit: int | None = None
    per_doc: int | None = None
    reader: str = "smollm2"
    reader_dtype: str = "auto"
    resume: bool = False
    seed: int = 0
    workers: int = 1
    generate: bool = True
    top_k: int = 5
    chunk_size: int = 120
    chunk_overlap: int = 60
    max_context_tokens: int | None = None
    max_answer_words: int = 48
    progress: bool = True

    def __post_init__(self) -> None:
        """Check every field (a one-line :class:`~semtoken_rag.errors.InvalidInputError` naming
        it); ``data`` and ``methods`` given as lists are kept as tuples.

        Paths are not opened here (:func:`~semtoken_lab.eval.data.load_examples` does)."""
        object.__setattr__(self, "data", _names_tuple(self.data, "RunConfig.data", paths=True))
        object.__setattr__(self, "methods", _names_tuple(self.methods, "RunConfig.methods"))
        object.__setattr__(self, "ratios", _ratios(self.ratios, "RunConfig.ratios"))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise InvalidInputError(
                f"RunConfig.methods: unknown {unknown}; choose from {', '.join(METHODS)}"
            )
        for name, choices in (("fmt", FORMATS), ("mode", MODES)):
            if getattr(self, name) not in choices:
                raise InvalidInputError(
                    f"RunConfig.{name} must be one of {choices}, got {getattr(self, name)!r}"
                )
        for name in ("out", "reader", "reader_dtype"):
            value = getattr(self, name)
            if not isinstance(value, (str, Path)) or not str(value).strip():
                raise InvalidInputError(f"RunConfig.{name} must be a non-empty str, got {value!r}")
            object.__setattr__(self, name, str(value))  # str: the config is written as JSON
        for name, low, optional in _COUNTS:
            _count(self, name, low, optional)
        if self.chunk_overlap >= self.chunk_size:
            raise InvalidInputError(
                f"RunConfig.chunk_overlap must be below chunk_size {self.chunk_size}, got "
                f"{self.chunk_overlap}"
            )


#: Choices of :attr:`RunConfig.fmt` and :attr:`RunConfig.mode`.
FORMATS = ("auto", "longbench", "shared")
MODES = ("context", "rag")
#: Integer fields of :class:`RunConfig`: ``(name, smallest value, None allowed)``.
_COUNTS = (
    ("budget", 1, True), ("limit", 1, True), ("per_doc", 1, True), ("seed", 0, False),
    ("workers", 1, False), ("top_k", 1, False), ("chunk_size", 1, False),
    ("chunk_overlap", 0, False), ("max_context_tokens", 1, True), ("max_answer_words", 1, False),
)  # fmt: skip


def _count(cfg: RunConfig, name: str, low: int, optional: bool) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(
            f"RunConfig.{name} must be an int >= {low}{' or None' if optional else ''}, "
            f"got {value!r}"
        )


def _names_tuple(values: Any, name: str, *, paths: bool = False) -> tuple[Any, ...]:
    """A non-empty sequence of names (strings, or also paths) as a tuple of strings; one string
    is refused, never split into characters."""
    kinds = (str, Path) if paths else (str,)
    if isinstance(values, (str, bytes, bytearray, Path, Mapping)) or not isinstance(
        values, Iterable
    ):
        raise InvalidInputError(
            f"{name} must be a tuple of {'paths' if paths else 'names'}, got {values!r:.60}"
        )
    items = tuple(values)
    bad = [v for v in items if not isinstance(v, kinds) or not str(v).strip()]
    if bad or not items:
        raise InvalidInputError(
            f"{name} must be a non-empty tuple of {'paths' if paths else 'names'}, "
            f"got {values!r:.60}"
        )
    return tuple(str(v) for v in items)  # str: the config is written as JSON


def _ratios(values: Any, name: str) -> tuple[float, ...]:
    """Target ratios in (0, 1], or :data:`~semtoken_lab.eval.records.AUTO`."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidInputError(f"{name} must be a tuple of ratios, got {values!r:.60}")
    items = tuple(values)
    ok = [
        not isinstance(r, bool)
        and isinstance(r, (int, float))
        and (r == AUTO or (math.isfinite(r) and 0.0 < r <= 1.0))
        for r in items
    ]
    if not items or not all(ok):
        raise InvalidInputError(
            f"{name} must be ratios in (0, 1] or AUTO ({AUTO}), got {values!r:.60}"
        )
    return tuple(float(r) for r in items)


@dataclass
class RunResult:
    """What a run produced."""

    records: list[ExampleRecord]
    new_records: int
    out: Path
    summary: list[Any] = field(default_factory=list)


def _targets(cfg: RunConfig, method: str) -> list[float]:
    if method == "none":
        return [1.0]
    if method == "closed-book":
        return [0.0]
    if cfg.budget:
        return [float(cfg.budget)]
    return [r for r in cfg.ratios if r != AUTO or runs_auto(method)]


def _budget(cfg: RunConfig, method: str, target: float, tokens_full: int) -> int | None:
    """The method's token budget (``None``: the engine's ``auto`` budget)."""
    if method == "none":
        return tokens_full
    if method == "closed-book":
        return 0
    if target == AUTO:
        return None
    if cfg.budget:
        return min(int(cfg.budget), tokens_full)
    return max(1, round(target * tokens_full))


def _auto(fn: Method) -> Callable[[Sequence[str], str], str]:
    """The ``auto``-budget entry point of ``fn`` (only SemToken methods have one)."""
    if not isinstance(fn, SemTokenMethod):
        raise InvalidInputError(f"method {fn!r:.60} has no auto budget; use a ratio")
    return fn.auto


def _truncate_middle(tokenizer: Any, text: str, limit: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= limit:
        return text
    half = limit // 2
    return tokenizer.decode(ids[:half]) + tokenizer.decode(ids[len(ids) - (limit - half) :])


class Runner:
    """Runs one :class:`RunConfig`.

    Args:
        cfg: The run.
        reader: A reader with ``answer`` and ``answer_loglik_batch`` (``LocalReader`` API);
            built from ``cfg.reader`` if omitted.
        env: Method resources (built if omitted; the reader's model is reused as scorer).
    """

    def __init__(self, cfg: RunConfig, *, reader: Any = None, env: MethodEnv | None = None):
        self.cfg = cfg
        if reader is None:
            from semtoken_lab.reader import LocalReader

            reader = LocalReader(cfg.reader, dtype=cfg.reader_dtype)
        self.reader = reader
        self.env = env or MethodEnv(
            reader=cfg.reader, seed=cfg.seed, lm=getattr(reader, "model", None)
        )
        self._methods: dict[str, Method] = {}

    def method(self, name: str) -> Method:
        if name not in self._methods:
            self._methods[name] = build_method(name, self.env)
        return self._methods[name]

    # ------------------------------------------------------------------ inputs
    def contexts(self, examples: Sequence[Example]) -> list[list[str]]:
        """The chunks each example's methods compress (own context, or retrieved chunks).

        Also sets ``env.documents`` to the distinct contexts as prepared here (what
        ``semtoken-docs`` ingests whole), before any method is built.
        """
        cfg = self.cfg
        docs = [ex.context for ex in examples]
        if cfg.max_context_tokens:
            tok = self.env.tokenizer()
            docs = [_truncate_middle(tok, d, cfg.max_context_tokens) for d in docs]
        self.env.documents = tuple(dict.fromkeys(docs))
        if cfg.mode == "context":
            return [[d] for d in docs]
        from semtoken_lab.eval.rag import ChunkPool

        pool = ChunkPool.build(
            docs, self.env.sentence_model(), size=cfg.chunk_size, overlap=cfg.chunk_overlap
        )
        return [pool.retrieve(ex.question, cfg.top_k) for ex in examples]

    # ------------------------------------------------------------------ one example
    def process(
        self, ex: Example, chunks: list[str], pending: Sequence[tuple[str, float]]
    ) -> list[ExampleRecord]:
        """Compress, score and (optionally) answer one example for every pending key."""
        cfg = self.cfg
        full_text = CHUNK_SEP.join(chunks)
        tokens_full = self.env.count(full_text)
        gold_in_full = answer_in_text(ex.answers, full_text)
        texts, infos = [], []
        for method, target in pending:
            budget = _budget(cfg, method, target, tokens_full)
            fn = self.method(method)
            t0 = time.perf_counter()
            text = (
                fn(chunks, ex.question, budget)
                if budget is not None
                else _auto(fn)(chunks, ex.question)
            )
            ms = (time.perf_counter() - t0) * 1e3
            kept = self.env.count(text)
            texts.append(text)
            infos.append((method, target, kept if budget is None else budget, ms, kept))
        gold = " ".join((ex.answers[0] if ex.answers else "").split()[: cfg.max_answer_words])
        lls: list[Any] = [None] * len(texts)
        if gold.strip():
            # Methods often return the same context (ablations that change nothing here, the
            # full text at a loose budget): score each distinct context once, shortest first in
            # small batches so little compute goes to padding.
            unique = sorted(set(texts), key=len)
            scored = self.reader.answer_loglik_batch(
                [ex.question] * len(unique),
                unique,
                [gold] * len(unique),
                task=ex.task_family,
                batch_size=2,
            )
            by_text = dict(zip(unique, scored))
            lls = [by_text[t] for t in texts]
        out = []
        for text, (method, target, budget, ms, kept), ll in zip(texts, infos, lls, strict=False):
            gen: dict[str, Any] = {}
            if cfg.generate:
                gen = self._generate(ex, text)
            out.append(
                ExampleRecord(
                    example_id=ex.id,
                    dataset=ex.dataset,
                    method=method,
                    ratio=target,
                    mode=cfg.mode,
                    tokens_full=tokens_full,
                    tokens_kept=kept,
                    achieved_ratio=kept / tokens_full if tokens_full else 1.0,
                    budget=budget,
                    compress_ms=ms,
                    answer_loglik=None if ll is None else ll.per_token,
                    answer_loglik_total=None if ll is None else ll.total,
                    gold_in_full=gold_in_full,
                    answer_recall=answer_in_text(ex.answers, text) if gold_in_full else None,
                    metric=ex.metric,
                    **gen,
                )
            )
        return out

    def _generate(self, ex: Example, text: str) -> dict[str, Any]:
        ans = self.reader.answer(
            ex.question,
            text,
            max_new_tokens=MAX_NEW_TOKENS.get(ex.task_family, 32),
            task=ex.task_family,
            options=list(ex.options) or None,
        )
        pred = ans.text
        kw = {"options": ex.options, "all_classes": ex.all_classes}
        best = lambda fn: max((fn(pred, a, **kw) for a in ex.answers), default=0.0)  # noqa: E731
        return {
            "prediction": pred,
            "score": score(ex.metric, pred, ex.answers, dataset=ex.dataset, **kw),
            "f1": best(qa_f1_score),
            "em": best(exact_match_score),
            "rouge_l": best(rouge_l_score),
            "accuracy": best(mc_accuracy_score) if ex.options else None,
            "prompt_tokens": ans.prompt_tokens,
            "prefill_ms": ans.prefill_ms,
            "ttft_ms": ans.ttft_ms,
            "decode_ms_per_token": ans.decode_ms_per_token,
            "new_tokens": ans.new_tokens,
            "kv_bytes": ans.kv_bytes,
        }

    # ------------------------------------------------------------------ the run
    def run(self, examples: Sequence[Example] | None = None) -> RunResult:
        """Run every pending key, append records, then write summary, report and plots."""
        cfg = self.cfg
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2), encoding="utf-8")
        if examples is None:
            examples = load_examples(cfg.data, fmt=cfg.fmt, limit=cfg.limit, per_doc=cfg.per_doc)  # type: ignore[arg-type]
        path = out / "examples.jsonl"
        done = {r.key for r in read_records(path)} if cfg.resume else set()
        keys = [(m, t) for m in cfg.methods for t in _targets(cfg, m)]
        work = []
        for ex in examples:
            pending = [(m, t) for m, t in keys if record_key(ex.dataset, ex.id, m, t) not in done]
            if pending:
                work.append((ex, pending))
        logger.info(
            "%d examples, %d with pending work (%d keys)",
            len(examples),
            len(work),
            sum(len(p) for _, p in work),
        )
        new = 0
        if work:
            # Contexts (and the rag pool) are built over *all* examples of the run, so a resumed
            # run retrieves from the same pool as the original one.
            all_chunks = dict(zip((e.id for e in examples), self.contexts(examples), strict=False))
            new = self._loop(work, all_chunks, path)
            self._log_store_use()
        records = read_records(path)
        if work and examples:
            self._heatmap(examples[0], all_chunks[examples[0].id], out)
        from semtoken_lab.eval.report import write_outputs

        summary = write_outputs(records, out, methods=cfg.methods)
        return RunResult(records=records, new_records=new, out=out, summary=summary)

    def _log_store_use(self) -> None:
        """Log, for each method reading a store, the chunks it had to encode at query time
        (0 for ``semtoken-docs`` in ``rag`` mode; the records have no per-method field)."""
        for method in self._methods.values():
            if isinstance(method, SemTokenMethod) and method.from_store:
                logger.info("%s", method.summary())

    def _heatmap(self, ex: Example, chunks: list[str], out: Path) -> None:
        """Semantic-density heatmap of the first example (best effort: never fails a run)."""
        # Cheap methods only: the heatmap re-runs them on one example.
        names = [m for m in HEATMAP_METHODS if m in self.cfg.methods]
        if not names:
            return
        try:
            from semtoken_lab.eval.density import sentence_density
            from semtoken_lab.eval.plots import density_heatmap

            tokens = self.env.count(CHUNK_SEP.join(chunks))
            target = next((r for r in self.cfg.ratios if r != AUTO), 0.5)
            budget = _budget(self.cfg, names[0], target, tokens)
            if budget is None:  # not reached: target is a ratio
                return
            rows = sentence_density(
                self.env, chunks, ex.question, {m: self.method(m) for m in names}, budget
            )
            title = f"{ex.id}: {ex.question[:80]}"
            density_heatmap(rows, out / "density_heatmap.png", title=title)
        except Exception as exc:
            logger.warning("density heatmap skipped: %s", exc)

    def _loop(
        self,
        work: list[tuple[Example, list[tuple[str, float]]]],
        all_chunks: dict[str, list[str]],
        path: Path,
    ) -> int:
        from tqdm.auto import tqdm

        cfg = self.cfg
        bar = tqdm(total=len(work), desc="eval", unit="ex", disable=not cfg.progress)
        new = 0
        with RecordWriter(path, append=bool(cfg.resume)) as writer:

            def one(item: tuple[Example, list[tuple[str, float]]]) -> int:
                ex, pending = item
                recs = self.process(ex, all_chunks[ex.id], pending)
                for r in recs:
                    writer.write(r)
                return len(recs)

            if cfg.workers <= 1:
                for item in work:
                    new += one(item)
                    bar.update(1)
            else:
                with ThreadPoolExecutor(cfg.workers) as pool:
                    for n in pool.map(one, work):
                        new += n
                        bar.update(1)
        bar.close()
        return new


def complete_examples(records: Sequence[ExampleRecord]) -> list[ExampleRecord]:
    """Records of the examples that have every (method, ratio) key of their dataset.

    A run stopped early (or still going) has some examples scored by only some methods; means
    over different example sets are not comparable, so partial reports keep complete examples.
    """
    keys: dict[str, set[tuple[str, float]]] = {}
    have: dict[tuple[str, str], set[tuple[str, float]]] = {}
    for r in records:
        keys.setdefault(r.dataset, set()).add((r.method, r.ratio))
        have.setdefault((r.dataset, r.example_id), set()).add((r.method, r.ratio))
    return [r for r in records if have[(r.dataset, r.example_id)] >= keys[r.dataset]]


def report_only(
    out: str | Path, methods: Sequence[str] = (), ratios: Sequence[float] = ()
) -> RunResult:
    """Rewrite ``summary.json``, ``report.md`` and plots of ``out`` from its ``examples.jsonl``,
    over complete examples only (see :func:`complete_examples`), restricted to ``methods`` when
    given, and to ``ratios`` (plus the ratio-free ``none`` / ``closed-book``) when given;
    computes nothing new.

    Raises:
        InvalidInputError: ``out`` is not a folder path or holds no ``examples.jsonl``;
            ``methods`` or ``ratios`` given as one string or not names / numbers.
    """
    from semtoken_lab.eval.records import read_records
    from semtoken_lab.eval.report import write_outputs

    if not isinstance(out, (str, Path)) or not str(out).strip():
        raise InvalidInputError(f"out must be a folder path, got {out!r:.60}")
    methods = _names_tuple(methods, "methods") if methods else ()
    ratios = _ratios(ratios, "ratios") if ratios else ()
    folder = Path(out)
    if not (folder / "examples.jsonl").is_file():
        raise InvalidInputError(f"{folder} holds no examples.jsonl: nothing to report")
    records = read_records(folder / "examples.jsonl")
    if methods:
        records = [r for r in records if r.method in set(methods)]
    if ratios:
        wanted = {float(x) for x in ratios}
        records = [r for r in records if r.method in RATIO_FREE or float(r.ratio) in wanted]
    records = complete_examples(records)
    rows = write_outputs(records, folder, methods=methods)
    return RunResult(records=records, new_records=0, out=folder, summary=rows)


def run_eval(cfg: RunConfig, **kwargs: Any) -> RunResult:
    """Convenience: ``Runner(cfg, **kwargs).run()``, the data validated before any model loads
    (a bad line fails in a second, not after the reader is loaded)."""
    examples = load_examples(cfg.data, fmt=cfg.fmt, limit=cfg.limit, per_doc=cfg.per_doc)  # type: ignore[arg-type]
    return Runner(cfg, **kwargs).run(examples)


__all__ = [
    "RATIO_FREE",
    "RunConfig",
    "RunResult",
    "Runner",
    "complete_examples",
    "report_only",
    "run_eval",
]
