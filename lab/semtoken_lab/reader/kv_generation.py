"""Generating and teacher-forcing answers with a KV budget, for a :class:`LocalReader`.

Why a separate prefill object: every policy starts from the same full prefill (the prompt is read
in full; the budget acts while decoding), so the evaluation prefills a prompt once and gives each
policy its own copy of the cache — on a CPU a 4k-token prefill costs far more than the decoding
steps it is compared on.  :meth:`BudgetedGeneration.generate` is what ``LocalReader.answer`` runs
when the reader has a ``kv_budget``; :meth:`BudgetedGeneration.teacher_force` feeds gold tokens
one at a time, so eviction acts exactly as it would while generating.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from semtoken_rag.errors import ConfigError, InvalidInputError

from semtoken_lab.reader.arguments import check_count
from semtoken_lab.reader.decoding import cache_argument
from semtoken_lab.reader.kv_budget import (
    KV_POLICIES,
    BudgetSession,
    KVBudget,
    KVTrace,
    require_room,
)
from semtoken_lab.reader.kv_cache import BudgetedCache, check_evictable
from semtoken_lab.reader.kv_layout import CompressorSpans, PromptLayout, SpanSource, layout_prompt
from semtoken_lab.reader.kv_query import QueryProbe
from semtoken_lab.reader.measure import DeviceClock
from semtoken_lab.reader.results import ReaderAnswer


@dataclass
class Prefill:
    """A prompt read in full: its cache, last-position logits and last queries.

    Attributes:
        layout: The prompt.
        cache: Its full cache (copied by :meth:`BudgetedGeneration.session`, never evicted).
        logits: ``(vocab,)`` float32 logits of the first answer token.
        queries: ``(layers, heads, rows, dim)`` post-rotary queries of the last prompt
            positions, or ``None`` when no policy needs them.
        seconds: Wall time of the forward pass.
    """

    layout: PromptLayout
    cache: BudgetedCache
    logits: Any
    queries: Any
    seconds: float


@dataclass(frozen=True)
class TeacherForced:
    """Log-probabilities of gold answer tokens fed one at a time under a budget.

    Attributes:
        logprobs: Natural-log probability of each gold token (the first from the prefill).
        trace: What the cache held.
    """

    logprobs: tuple[float, ...]
    trace: KVTrace

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))

    @property
    def after_first(self) -> float:
        """Sum over all tokens but the first (the first is read from the full prefill)."""
        return float(sum(self.logprobs[1:]))


def _reads_queries(policy: str) -> bool:
    made = KV_POLICIES[policy]()
    return bool(made.prefill_rows or made.decode_queries)


class BudgetedGeneration:
    """KV-budgeted decoding for one reader (thread-safe: one budgeted call at a time).

    Args:
        reader: A :class:`~semtoken_lab.reader.LocalReader` (model, tokenizer, prompts).
        config: The default budget (``None``: callers pass one per call).
        spans: Where context spans come from; default: the units of a
            :class:`semtoken_rag.Compressor`, built on first use.

    Raises:
        ConfigError: the model's cache or attention cannot support the policy (named).
    """

    def __init__(
        self, reader: Any, config: KVBudget | None = None, *, spans: SpanSource | None = None
    ) -> None:
        self.reader = reader
        self.model = reader.model
        self.config = config
        self._spans = spans
        self._lock = threading.RLock()
        self._probe: QueryProbe | None = None
        self._attached = False
        self._cache_kw = cache_argument(self.model)
        self._clock = DeviceClock(reader.device)
        if config is not None:
            self.check(config.policy)

    def check(self, policy: str) -> None:
        """Raise :class:`ConfigError` (naming the model class) unless ``policy`` can run."""
        if policy not in KV_POLICIES:
            raise ConfigError(f"unknown kv_policy {policy!r}; choose one of {sorted(KV_POLICIES)}")
        if not KV_POLICIES[policy]().evicts:
            return
        check_evictable(self.model, policy)
        if _reads_queries(policy) and self._probe is None:
            self._probe = QueryProbe(self.model, policy)

    # ------------------------------------------------------------------ prompts
    def span_source(self) -> SpanSource:
        """The span source (a default compressor is built once, under the lock)."""
        with self._lock:
            if self._spans is None:
                from semtoken_rag import Compressor, SemTokenConfig

                self._spans = CompressorSpans(Compressor(SemTokenConfig()))
            return self._spans

    def layout(
        self,
        question: str,
        context: str,
        *,
        task: str = "qa",
        options: Sequence[str] | None = None,
        reserve: int = 0,
        limit: int | None = None,
    ) -> PromptLayout:
        """The reader's prompt for this example, with its spans located."""
        return layout_prompt(
            self.reader,
            question,
            context,
            spans=self.span_source() if context.strip() else None,
            task=task,
            options=options,
            reserve=reserve,
            limit=limit,
        )

    @contextlib.contextmanager
    def attached(self, *policies: str) -> Iterator[None]:
        """Hold the lock, and the query hooks when one of ``policies`` reads queries, for a group
        of :meth:`prefill` / :meth:`session` calls."""
        with self._lock:
            for policy in policies:
                self.check(policy)
            if self._probe is None or not any(_reads_queries(p) for p in policies):
                yield
                return
            with self._probe.attached():
                self._attached = True
                try:
                    yield
                finally:
                    self._attached = False

    # ------------------------------------------------------------------ decoding
    def prefill(self, layout: PromptLayout, *, rows: int = 0) -> Prefill:
        """Read the prompt in full, recording the last ``rows`` queries (call inside
        :meth:`attached` when ``rows``)."""
        import torch

        if not layout.ids:
            raise InvalidInputError("empty prompt")
        device = self.reader.device
        ids = torch.tensor([layout.ids], device=device)
        positions = torch.arange(len(layout.ids))
        cache = BudgetedCache(self.model.config)
        rows = min(rows, len(layout.ids))
        if rows:
            if self._probe is None or not self._attached:
                raise RuntimeError("prefill(rows=...) outside attached() of a query policy")
            self._probe.arm(rows)
        t0 = self._clock.now()
        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                position_ids=positions[None].to(device),
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_kw: cache},
            )
            cache.record_positions(positions)
            queries = self._probe.take(positions[-rows:]) if rows and self._probe else None
        seconds = self._clock.now() - t0
        return Prefill(layout, cache, out.logits[0, -1].float(), queries, seconds)

    def session(self, prefill: Prefill, config: KVBudget) -> BudgetSession:
        """A decoding session on a copy of ``prefill``'s cache (call inside :meth:`attached`)."""
        self.check(config.policy)
        if _reads_queries(config.policy) and not self._attached:
            raise RuntimeError(f"session for {config.policy!r} outside attached()")
        rows = config.make_policy().prefill_rows
        have = 0 if prefill.queries is None else int(prefill.queries.shape[2])
        if rows and have < min(rows, prefill.layout.prompt_tokens):
            raise InvalidInputError(
                f"kv_policy {config.policy!r} reads the last {rows} prompt queries but the "
                f"prefill recorded {have}; call prefill(layout, rows={rows})"
            )
        return BudgetSession(
            self.model,
            prefill.cache.clone(),
            prefill.layout,
            config,
            queries=prefill.queries,
            probe=self._probe,
            query_scaling=self._probe.scaling if self._probe is not None else 1.0,
        )

    def teacher_force(
        self, prefill: Prefill, answer_ids: Sequence[int], config: KVBudget
    ) -> TeacherForced:
        """Log-probabilities of ``answer_ids`` fed one at a time under ``config``."""
        import torch

        if not answer_ids:
            raise InvalidInputError("the answer to score has no tokens")
        sess = self.session(prefill, config)
        logits = prefill.logits
        out: list[float] = []
        for k, tok in enumerate(answer_ids):
            out.append(float(torch.log_softmax(logits, dim=-1)[int(tok)]))
            if k + 1 < len(answer_ids):
                logits = sess.step(int(tok))
        return TeacherForced(tuple(out), sess.trace())

    def warmup(self) -> None:
        """A tiny budgeted generation (the whole prompt as budget, so any prompt fits)."""
        from dataclasses import replace

        cfg = self.config or KVBudget(1.0, "none")
        self.generate(
            "What is this?", "A warm-up.", max_new_tokens=2, config=replace(cfg, budget=1.0)
        )

    def generate(
        self,
        question: str,
        context: str,
        *,
        max_new_tokens: int = 32,
        task: str = "qa",
        options: Sequence[str] | None = None,
        config: KVBudget | None = None,
    ) -> ReaderAnswer:
        """Greedy answer under the budget, with its cost and :class:`KVTrace`.

        Raises:
            InvalidInputError: ``max_new_tokens`` is not an int >= 1 (it generated one token).
        """
        check_count("max_new_tokens", max_new_tokens)
        cfg = config or self.config
        if cfg is None:
            raise InvalidInputError("no KV budget given")
        t_call = time.perf_counter()
        lay = self.layout(question, context, task=task, options=options, reserve=max_new_tokens)
        require_room(lay, cfg)  # before paying for the prefill
        rows = cfg.make_policy().prefill_rows
        eos = self.reader.eos_token_ids
        with self.attached(cfg.policy):
            self._clock.reset_peak()
            pre = self.prefill(lay, rows=rows)
            tok = int(pre.logits.argmax())
            t_first = time.perf_counter()
            sess = self.session(pre, cfg)
            tokens = [tok]
            while tok not in eos and len(tokens) < max_new_tokens:
                tok = int(sess.step(tok).argmax())
                tokens.append(tok)
            t_end = time.perf_counter()
            trace = sess.trace()
        body = [t for t in tokens if t not in eos]
        return ReaderAnswer(
            text=str(self.reader.tokenizer.decode(body, skip_special_tokens=True)).strip(),
            prompt_tokens=lay.prompt_tokens,
            prefill_ms=pre.seconds * 1e3,
            ttft_ms=(t_first - t_call) * 1e3,
            decode_ms_per_token=(t_end - t_first) / sess.steps * 1e3 if sess.steps else 0.0,
            new_tokens=len(tokens),
            kv_bytes=trace.kv_bytes[0],
            peak_memory_bytes=self._clock.peak_bytes(),
            attn_implementation=self.reader.attn_implementation,
            device=self.reader.device,
            kv_trace=trace,
        )
