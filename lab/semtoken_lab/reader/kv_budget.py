"""A KV-cache budget during decoding: its configuration, one decoding session, and its trace.

Why during decoding (the seed paper's section 3.4, "autoregressive merging with query
conditioning"): prompt compression decides once, before the model reads; a generation-time
budget keeps deciding while the answer is written, with the model's current query.  The frame
is the same for every policy (:mod:`semtoken_lab.reader.kv_policies`): the prompt is prefilled in
full (its first token comes from the full prompt, as in any generation), then after every step
the cache holds at most ``budget`` entries per layer and head.  The instruction prefix, the
question suffix and the ``recent`` newest tokens are never evicted; context entries go first,
the policy choosing which; old generated tokens go (oldest first) only once the context is gone.

Positions: every fed token gets its true absolute position as ``position_ids``
(:attr:`~semtoken_lab.reader.kv_cache.BudgetedCache.next_position`), so its rotary embedding is
what it would be without eviction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from semtoken_rag.errors import ConfigError

from semtoken_lab.reader.decoding import cache_argument
from semtoken_lab.reader.kv_cache import BudgetedCache
from semtoken_lab.reader.kv_layout import PromptLayout
from semtoken_lab.reader.kv_policies import (
    KVPolicy,
    NoEviction,
    SnapKVPolicy,
    StreamingPolicy,
    context_mask,
)
from semtoken_lab.reader.kv_semtoken import (
    SemTokenCosPolicy,
    SemTokenPolicy,
    SemTokenStaticPolicy,
)

#: policy name -> factory(**options); options a policy does not use are ignored.
KV_POLICIES: dict[str, Callable[..., KVPolicy]] = {
    "none": NoEviction,
    "streaming": StreamingPolicy,
    "snapkv": SnapKVPolicy,
    "semtoken": SemTokenPolicy,
    "semtoken-cos": SemTokenCosPolicy,
    "semtoken-static": SemTokenStaticPolicy,
}


@dataclass(frozen=True)
class KVBudget:
    """How to bound the KV cache while decoding.

    Attributes:
        budget: A fraction in ``(0, 1]`` of the prompt's tokens, or a token count ``>= 1``.
        policy: ``semtoken``, ``semtoken-static``, ``semtoken-cos``, ``streaming``, ``snapkv``
            or ``none`` (see :data:`KV_POLICIES`).
        recompute_every: SemToken re-scores the spans with the current query every this many
            decoding steps.
        recent: Newest generated tokens never evicted (shrunk to what the budget leaves).
        window: SnapKV's observation window (last prompt queries).
        pool_kernel: SnapKV's average-pool width over positions.
        chunk: Token-level policies evict at least this many entries at once (fewer copies).
        query_window: Prompt queries (the question's last tokens) SemToken's first scores
            average over; chosen on a development split (docs/kv_budget.md).

    Raises:
        ConfigError: any value out of range, or an unknown policy.
    """

    budget: float | int
    policy: str = "semtoken"
    recompute_every: int = 8
    recent: int = 32
    window: int = 32
    pool_kernel: int = 5
    chunk: int = 16
    query_window: int = 32

    def __post_init__(self) -> None:
        b = self.budget
        ok_int = isinstance(b, int) and not isinstance(b, bool) and b >= 1
        ok_frac = isinstance(b, float) and math.isfinite(b) and 0.0 < b <= 1.0
        if not (ok_int or ok_frac):
            raise ConfigError(
                f"kv_budget must be a fraction in (0, 1] of the prompt or a token count >= 1, "
                f"got {b!r}"
            )
        if self.policy not in KV_POLICIES:
            raise ConfigError(
                f"unknown kv_policy {self.policy!r}; choose one of {sorted(KV_POLICIES)}"
            )
        for name in ("recompute_every", "window", "pool_kernel", "chunk", "query_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"KVBudget.{name} must be an int >= 1, got {value!r}")
        if isinstance(self.recent, bool) or not isinstance(self.recent, int) or self.recent < 1:
            raise ConfigError(f"KVBudget.recent must be an int >= 1, got {self.recent!r}")
        if self.pool_kernel % 2 == 0:
            raise ConfigError(f"KVBudget.pool_kernel must be odd, got {self.pool_kernel}")

    def tokens(self, prompt_tokens: int) -> int:
        """The budget in cache entries for a prompt of ``prompt_tokens`` tokens."""
        if isinstance(self.budget, float):
            return max(1, round(self.budget * prompt_tokens))
        return int(self.budget)

    def make_policy(self) -> KVPolicy:
        return KV_POLICIES[self.policy](
            window=self.window,
            pool_kernel=self.pool_kernel,
            chunk=self.chunk,
            query_window=self.query_window,
        )


@dataclass(frozen=True)
class Eviction:
    """One eviction: at which decoding step, how many entries per row, which spans went."""

    step: int
    entries: int
    spans: tuple[int, ...]


@dataclass(frozen=True)
class KVTrace:
    """What the cache held while decoding one answer.

    Attributes:
        policy: Policy name.
        budget_tokens: Entries allowed per (layer, head) after every step.
        prompt_tokens: Tokens of the prompt.
        protected_tokens: Prompt tokens never evicted (instruction prefix + question suffix).
        entries: Entries per row when decoding starts (index 0, after the prefill's eviction)
            and after each decoding step.
        kv_bytes: Measured bytes of the key/value tensors at the same moments.
        unbounded_bytes: Bytes an unbounded cache holds at the same moments (prompt + tokens
            so far, at the prefill's measured bytes per entry).
        prefill_kv_bytes: Bytes right after prefill, before any eviction (the prefill itself is
            not bounded).
        decode_s: Wall time of the decoding steps (forward passes and the policy).
        policy_s: Of which in the policy (scoring and eviction).
        evictions: Every eviction, in order.
        span_kept: Per context span, the fraction of its entries (over layers and heads) still
            cached at the end.
        span_texts: The spans' text (for display).
    """

    policy: str
    budget_tokens: int
    prompt_tokens: int
    protected_tokens: int
    entries: tuple[int, ...]
    kv_bytes: tuple[int, ...]
    unbounded_bytes: tuple[int, ...]
    prefill_kv_bytes: int
    decode_s: float
    policy_s: float
    evictions: tuple[Eviction, ...] = ()
    span_kept: tuple[float, ...] = ()
    span_texts: tuple[str, ...] = field(default=(), repr=False)

    @property
    def steps(self) -> int:
        return len(self.entries) - 1

    @property
    def mean_kv_bytes(self) -> float:
        return sum(self.kv_bytes) / len(self.kv_bytes)

    @property
    def peak_kv_bytes(self) -> int:
        return max(self.kv_bytes)

    @property
    def kv_ratio(self) -> float:
        """Mean bytes held while decoding over the unbounded cache's mean."""
        return self.mean_kv_bytes / (sum(self.unbounded_bytes) / len(self.unbounded_bytes))

    @property
    def evicted_spans(self) -> tuple[int, ...]:
        """Context spans with no entry left in any layer or head."""
        return tuple(i for i, kept in enumerate(self.span_kept) if kept == 0.0)


def require_room(layout: PromptLayout, config: KVBudget) -> int:
    """The budget in entries for ``layout``, checked to hold the protected tokens + one.

    Raises:
        ConfigError: the budget is smaller than the instruction, the question and one new
            token (the message gives the numbers).
    """
    budget = config.tokens(layout.prompt_tokens)
    need = layout.protected_tokens + 1
    if config.policy != "none" and budget < need:
        raise ConfigError(
            f"KV budget of {budget} tokens ({config.budget!r} of a "
            f"{layout.prompt_tokens}-token prompt) is smaller than the {need} the "
            f"instruction ({layout.context_start} tokens), the question "
            f"({layout.prompt_tokens - layout.context_end} tokens) and one new token need"
        )
    return budget


class BudgetSession:
    """Decoding one prompt under a budget, one token per :meth:`step`.

    Args:
        model: The causal LM.
        cache: The prefilled cache (consumed: evicted from in place).
        layout: The prompt's layout.
        config: The budget.
        queries: Post-rotary queries of the prompt's last positions ``(layers, heads, rows,
            dim)`` captured at prefill, or ``None``.
        probe: The :class:`~semtoken_lab.reader.kv_query.QueryProbe` (attached) when the policy
            reads decoding queries.
        query_scaling: The attention's softmax scale (SnapKV).

    Raises:
        ConfigError: the budget cannot hold the instruction, the question and one new token
            (the message gives the numbers).
    """

    def __init__(
        self,
        model: Any,
        cache: BudgetedCache,
        layout: PromptLayout,
        config: KVBudget,
        *,
        queries: Any = None,
        probe: Any = None,
        query_scaling: float = 1.0,
    ) -> None:
        import torch

        self.model, self.cache, self.layout, self.config = model, cache, layout, config
        self.policy = config.make_policy()
        self.budget = require_room(layout, config)
        self.recent = min(config.recent, max(self.budget - layout.protected_tokens, 1))
        self.query_scaling = query_scaling
        self._probe = probe if self.policy.decode_queries else None
        self._kw = cache_argument(model)
        self._torch = torch
        self._steps = 0
        self._per_entry = cache.nbytes() / max(cache.n_entries, 1)
        self._prefill_bytes = cache.nbytes()
        self._decode_s = self._policy_s = 0.0
        self._evictions: list[Eviction] = []
        t0 = time.perf_counter()
        if self.policy.evicts:
            self.policy.start(self, queries)
            self._enforce()
        self._policy_s += time.perf_counter() - t0
        self._entries = [cache.n_entries]
        self._bytes = [cache.nbytes()]

    # ------------------------------------------------------------------ decoding
    def step(self, token: int) -> Any:
        """Feed ``token`` at its true position; returns the next-token logits ``(vocab,)``."""
        torch = self._torch
        t0 = time.perf_counter()
        pos = self.cache.next_position
        probe = self._probe if self._steps % self.config.recompute_every == 0 else None
        if probe is not None:
            probe.arm(1)
        device = self.cache.kv_layers[0].keys.device
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([[int(token)]], device=device),
                position_ids=torch.tensor([[pos]], device=device),
                use_cache=True,
                logits_to_keep=1,
                **{self._kw: self.cache},
            )
            self.cache.record_positions(torch.tensor([pos]))
            tp = time.perf_counter()
            self._steps += 1
            if probe is not None:
                self.policy.observe(self, probe.take(torch.tensor([pos])))
            self._enforce()
        t1 = time.perf_counter()
        self._policy_s += t1 - tp
        self._decode_s += t1 - t0
        self._entries.append(self.cache.n_entries)
        self._bytes.append(self.cache.nbytes())
        return out.logits[0, -1].float()

    @property
    def steps(self) -> int:
        return self._steps

    # ------------------------------------------------------------------ eviction
    def _spans_present(self) -> set[int]:
        pos = self.cache.positions
        ctx = pos[context_mask(self, pos)] - self.layout.context_start
        return {int(s) for s in self.layout.token_span[ctx.unique().numpy()]}

    def _enforce(self) -> None:
        """Bring the cache back within budget (context first, then old generated tokens)."""
        torch = self._torch
        over = self.cache.n_entries - self.budget
        if over <= 0 or not self.policy.evicts:
            return
        before = self._spans_present()
        start = self.cache.n_entries
        row = self.cache.positions[0, 0]
        if bool(context_mask(self, row).any()):
            self.cache.retain(self.policy.evict_context(self, over))
            over = self.cache.n_entries - self.budget
        if over > 0:  # no context left: the oldest generated tokens outside the recent window
            row = self.cache.positions[0, 0]
            first_recent = self.cache.next_position - self.recent
            old = (row >= self.layout.prompt_tokens) & (row < first_recent)
            drop = torch.nonzero(old).view(-1)[:over]
            keep = torch.ones_like(row, dtype=torch.bool)
            keep[drop] = False
            self.cache.retain(torch.nonzero(keep).view(-1))
        if self.cache.n_entries > self.budget:
            raise RuntimeError(
                f"cache of {self.cache.n_entries} entries over the budget {self.budget}"
            )
        gone = tuple(sorted(before - self._spans_present()))
        self._evictions.append(Eviction(self._steps, start - self.cache.n_entries, gone))

    # ------------------------------------------------------------------ results
    def trace(self) -> KVTrace:
        """What the cache held so far."""
        lay = self.layout
        span_kept: tuple[float, ...] = ()
        span_texts: tuple[str, ...] = ()
        if lay.n_spans and lay.context_end > lay.context_start:
            pos = self.cache.positions
            ctx = pos[context_mask(self, pos)] - lay.context_start
            held = self._torch.bincount(
                self._torch.as_tensor(lay.token_span)[ctx], minlength=lay.n_spans
            ).numpy()
            size = self._torch.bincount(
                self._torch.as_tensor(lay.token_span), minlength=lay.n_spans
            ).numpy()
            rows = pos.shape[0] * pos.shape[1]
            span_kept = tuple(float(h) / (rows * s) if s else 1.0 for h, s in zip(held, size))
            span_texts = tuple(lay.span_text(i) for i in range(lay.n_spans))
        n0 = lay.prompt_tokens
        return KVTrace(
            policy=self.config.policy,
            budget_tokens=self.budget,
            prompt_tokens=n0,
            protected_tokens=lay.protected_tokens,
            entries=tuple(self._entries),
            kv_bytes=tuple(self._bytes),
            unbounded_bytes=tuple(
                round(self._per_entry * (n0 + t)) for t in range(len(self._entries))
            ),
            prefill_kv_bytes=self._prefill_bytes,
            decode_s=self._decode_s,
            policy_s=self._policy_s,
            evictions=tuple(self._evictions),
            span_kept=span_kept,
            span_texts=span_texts,
        )
