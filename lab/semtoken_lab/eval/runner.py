"""The evaluation loop: examples x methods x ratios -> records on disk -> summary, report, plots.

Order of work per example: compress with every pending (method, ratio), then score all the
compressed contexts with the reader in one batched log-likelihood pass, then (optionally)
generate.  Every finished record is appended to ``examples.jsonl`` at once, so a killed run loses
at most the example in flight and ``resume`` recomputes nothing that is on disk.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from semtoken_rag.errors import InvalidInputError

from semtoken_lab.eval.data import Example, load_examples
from semtoken_lab.eval.method_env import Method, MethodEnv
from semtoken_lab.eval.methods import build_method
from semtoken_lab.eval.metrics import answer_in_text
from semtoken_lab.eval.reading import answer_logliks, generate_answer
from semtoken_lab.eval.records import (
    AUTO,
    ExampleRecord,
    RecordWriter,
    read_records,
    record_key,
    runs_auto,
)
from semtoken_lab.eval.report import write_outputs
from semtoken_lab.eval.run_config import RunConfig, RunResult
from semtoken_lab.eval.selection import CHUNK_SEP
from semtoken_lab.eval.semtoken_variants import SemTokenMethod

logger = logging.getLogger(__name__)

#: Methods shown as "kept" rows of the density heatmap (the cheap ones), in this order.
HEATMAP_METHODS = ("semtoken", "embed-filter", "semtoken-noquery", "truncate", "random")


@dataclass(frozen=True)
class Compression:
    """One (method, ratio) key's compressed context of an example, before the reader sees it.

    Attributes:
        method: Method name.
        ratio: Target ratio (or budget) of the key, as recorded.
        text: The compressed context.
        budget: The token budget given (the tokens kept under the ``auto`` budget).
        compress_ms: Wall time of the compression.
        tokens_kept: Reader tokens of ``text``.
    """

    method: str
    ratio: float
    text: str
    budget: int
    compress_ms: float
    tokens_kept: int


def _targets(cfg: RunConfig, method: str) -> list[float]:
    """The ratios a method runs at: once for the ratio-free methods, else every ratio of the
    run (``auto`` only for the methods that have it), or the one absolute budget."""
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
    """``text`` cut to ``limit`` reader tokens by dropping its middle (for short-window readers)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= limit:
        return text
    half = limit // 2
    return tokenizer.decode(ids[:half]) + tokenizer.decode(ids[len(ids) - (limit - half) :])


def example_key(ex: Example) -> tuple[str, str]:
    """``(dataset, id)``: what tells examples apart (ids repeat across datasets, as in the
    records' resume key)."""
    return (ex.dataset, ex.id)


def _check_unique(examples: Sequence[Example]) -> None:
    """Refuse two examples with one ``(dataset, id)``: their records would share a resume key
    and their contexts one slot.

    Raises:
        InvalidInputError: the first repeated key, named.
    """
    seen: set[tuple[str, str]] = set()
    for ex in examples:
        key = example_key(ex)
        if key in seen:
            raise InvalidInputError(
                f"example id {ex.id!r} appears twice in dataset {ex.dataset!r}; "
                "ids must be unique within a dataset"
            )
        seen.add(key)


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
        full_text = CHUNK_SEP.join(chunks)
        tokens_full = self.env.count(full_text)
        gold_in_full = answer_in_text(ex.answers, full_text)
        compressed = [self._compress(ex, chunks, m, target, tokens_full) for m, target in pending]
        texts = [c.text for c in compressed]
        lls = answer_logliks(self.reader, ex, texts, self.cfg.max_answer_words)
        return [
            self._record(ex, c, ll, tokens_full, gold_in_full)
            for c, ll in zip(compressed, lls, strict=True)
        ]

    def _compress(
        self, ex: Example, chunks: list[str], method: str, target: float, tokens_full: int
    ) -> Compression:
        """Run one method on the example's chunks, timed (building the method is not)."""
        budget = _budget(self.cfg, method, target, tokens_full)
        fn = self.method(method)
        t0 = time.perf_counter()
        text = (
            fn(chunks, ex.question, budget)
            if budget is not None
            else _auto(fn)(chunks, ex.question)
        )
        ms = (time.perf_counter() - t0) * 1e3
        kept = self.env.count(text)
        return Compression(method, target, text, kept if budget is None else budget, ms, kept)

    def _record(
        self, ex: Example, c: Compression, ll: Any, tokens_full: int, gold_in_full: bool
    ) -> ExampleRecord:
        """The record of one key: the compression, its log-likelihood and (optionally) the
        generated answer with its metrics."""
        gen = generate_answer(self.reader, ex, c.text) if self.cfg.generate else {}
        return ExampleRecord(
            example_id=ex.id,
            dataset=ex.dataset,
            method=c.method,
            ratio=c.ratio,
            mode=self.cfg.mode,
            tokens_full=tokens_full,
            tokens_kept=c.tokens_kept,
            achieved_ratio=c.tokens_kept / tokens_full if tokens_full else 1.0,
            budget=c.budget,
            compress_ms=c.compress_ms,
            answer_loglik=None if ll is None else ll.per_token,
            answer_loglik_total=None if ll is None else ll.total,
            gold_in_full=gold_in_full,
            answer_recall=answer_in_text(ex.answers, c.text) if gold_in_full else None,
            metric=ex.metric,
            **gen,
        )

    # ------------------------------------------------------------------ the run
    def run(self, examples: Sequence[Example] | None = None) -> RunResult:
        """Run every pending key, append records, then write summary, report and plots."""
        cfg = self.cfg
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2), encoding="utf-8")
        if examples is None:
            examples = load_examples(cfg.data, fmt=cfg.fmt, limit=cfg.limit, per_doc=cfg.per_doc)  # type: ignore[arg-type]
        _check_unique(examples)
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
            all_chunks = dict(zip(map(example_key, examples), self.contexts(examples), strict=True))
            new = self._loop(work, all_chunks, path)
            self._log_store_use()
        records = read_records(path)
        if work and examples:
            self._heatmap(examples[0], all_chunks[example_key(examples[0])], out)
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
        all_chunks: dict[tuple[str, str], list[str]],
        path: Path,
    ) -> int:
        from tqdm.auto import tqdm

        cfg = self.cfg
        bar = tqdm(total=len(work), desc="eval", unit="ex", disable=not cfg.progress)
        new = 0
        with RecordWriter(path, append=bool(cfg.resume)) as writer:

            def one(item: tuple[Example, list[tuple[str, float]]]) -> int:
                ex, pending = item
                recs = self.process(ex, all_chunks[example_key(ex)], pending)
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


def run_eval(cfg: RunConfig, **kwargs: Any) -> RunResult:
    """Convenience: ``Runner(cfg, **kwargs).run()``, the data validated before any model loads
    (a bad line fails in a second, not after the reader is loaded)."""
    examples = load_examples(cfg.data, fmt=cfg.fmt, limit=cfg.limit, per_doc=cfg.per_doc)  # type: ignore[arg-type]
    return Runner(cfg, **kwargs).run(examples)
