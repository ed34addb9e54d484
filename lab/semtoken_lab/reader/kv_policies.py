"""Which context entries a bounded KV cache evicts: the policy interface and the baselines.

Every policy works under the same frame (:mod:`semtoken_lab.reader.kv_budget`): the instruction
prefix, the question suffix and the most recent tokens are never evicted; when the cache is over
budget the session asks the policy to evict at least ``n`` *context* entries.  Policies differ
only in which ones.  The SemToken policies live in :mod:`semtoken_lab.reader.kv_semtoken`; the
baselines are here, written small because kvpress (NVIDIA's library of presses) pins
``transformers<5.3`` and this project runs 5.x (docs/kv_budget.md):

* ``streaming`` — StreamingLLM: attention sinks plus a recent window.  The protected prefix holds
  the sinks (the chat template's first tokens), the protected suffix and recent tokens are the
  window; context entries go oldest first.
* ``snapkv`` — SnapKV: the attention that the prompt's last ``window`` queries pay to each context
  entry, averaged over the window and the query heads of each KV group, smoothed by a
  ``pool_kernel`` average pool, ranked per layer and KV head (each head keeps its own entries).
  The scores are computed once, at prefill, as in the paper.
* ``none`` — no eviction: the ceiling every policy is measured against.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from semtoken_lab.reader.kv_cache import BudgetedCache
    from semtoken_lab.reader.kv_layout import PromptLayout


class PolicySession(Protocol):
    """What a policy reads of the decoding session it serves.

    Why a protocol here: the session (:class:`semtoken_lab.reader.kv_budget.BudgetSession`)
    builds its policy from the registry of policies, so the policies must not import it back;
    they name only the three things they read.
    """

    @property
    def layout(self) -> PromptLayout:
        """Where the prompt's instruction, context and question sit."""
        ...

    @property
    def cache(self) -> BudgetedCache:
        """The cache being evicted from."""
        ...

    @property
    def query_scaling(self) -> float:
        """The attention's softmax scale."""
        ...


def context_mask(session: PolicySession, positions: Any) -> Any:
    """Boolean mask of the entries of ``positions`` that belong to the prompt's context."""
    lay = session.layout
    return (positions >= lay.context_start) & (positions < lay.context_end)


class KVPolicy(ABC):
    """One eviction rule.

    Attributes:
        name: Registry name.
        evicts: ``False`` only for the no-eviction ceiling.
        per_head: Rows (layer, KV head) may keep different entries.
        prefill_rows: Prompt queries the policy reads at prefill (0: none).
        decode_queries: The policy reads the current query every ``recompute_every`` steps.
    """

    name: ClassVar[str]
    evicts: ClassVar[bool] = True
    per_head: ClassVar[bool] = False
    decode_queries: ClassVar[bool] = False

    @property
    def prefill_rows(self) -> int:
        return 0

    def start(self, session: PolicySession, queries: Any) -> None:  # noqa: B027 (optional hook)
        """Called once after prefill, before the first eviction.

        Args:
            queries: ``(layers, heads, rows, dim)`` post-rotary queries of the last
                :attr:`prefill_rows` prompt positions, or ``None``.
        """

    def observe(self, session: PolicySession, query: Any) -> None:  # noqa: B027 (optional hook)
        """The current decoding query ``(layers, heads, 1, dim)`` (every N steps)."""

    @abstractmethod
    def evict_context(self, session: PolicySession, n: int) -> Any:
        """Keep-index that evicts at least ``min(n, context entries)`` context entries.

        Returns:
            ``(k,)`` indices shared by every row, or ``(layers, kv_heads, k)`` (per-head).
        """


def shared_keep(drop: Any) -> Any:
    """Keep-index shared by every row: the entries of one row not marked in ``drop``."""
    import torch

    return torch.nonzero(~drop, as_tuple=False).view(-1)


class NoEviction(KVPolicy):
    """The unbounded cache (ceiling)."""

    name = "none"
    evicts = False

    def __init__(self, **_: Any) -> None:
        pass

    def evict_context(self, session: PolicySession, n: int) -> Any:
        raise RuntimeError("the 'none' policy never evicts")


class StreamingPolicy(KVPolicy):
    """Sinks (the protected prefix) + the most recent entries: oldest context goes first."""

    name = "streaming"

    def __init__(self, chunk: int = 16, **_: Any) -> None:
        self.chunk = chunk

    def evict_context(self, session: PolicySession, n: int) -> Any:
        row = session.cache.positions[0, 0]
        ctx = context_mask(session, row)
        m = min(max(n, self.chunk), int(ctx.sum()))
        oldest = row.masked_fill(~ctx, np.iinfo(np.int64).max).argsort()[:m]
        drop = ctx.new_zeros(ctx.shape)
        drop[oldest] = True
        return shared_keep(drop)


class SnapKVPolicy(KVPolicy):
    """Attention of the prompt's last ``window`` queries, pooled, ranked per layer and KV head."""

    name = "snapkv"
    per_head = True

    def __init__(self, window: int = 32, pool_kernel: int = 5, chunk: int = 16, **_: Any) -> None:
        self.window, self.kernel, self.chunk = window, pool_kernel, chunk
        self.scores: Any = None  # (layers, kv_heads, prompt_len) float32

    @property
    def prefill_rows(self) -> int:
        return self.window

    def start(self, session: PolicySession, queries: Any) -> None:
        import torch
        import torch.nn.functional as F

        cache, scale = session.cache, session.query_scaling
        n_prompt = session.layout.prompt_tokens
        w = min(self.window, queries.shape[2], n_prompt)
        q = queries[:, :, -w:]
        q_pos = torch.arange(n_prompt - w, n_prompt)
        k_pos = cache.positions[0, 0]
        causal = k_pos[None, :] > q_pos[:, None]  # (w, entries)
        out = []
        for layer, ql in zip(cache.kv_layers, q, strict=True):
            keys = layer.keys[0].float()  # (kv_heads, entries, dim)
            groups = ql.shape[0] // keys.shape[0]
            qg = ql.reshape(keys.shape[0], groups * w, -1)
            logits = (qg @ keys.transpose(1, 2)) * scale  # (kv_heads, groups*w, entries)
            logits = logits.view(keys.shape[0], groups, w, -1).masked_fill(causal, float("-inf"))
            attn = torch.softmax(logits, dim=-1).mean(dim=(1, 2))  # (kv_heads, entries)
            pad = self.kernel // 2
            out.append(F.avg_pool1d(attn[:, None], self.kernel, stride=1, padding=pad)[:, 0])
        self.scores = torch.stack(out)  # (layers, kv_heads, entries == prompt positions)

    def evict_context(self, session: PolicySession, n: int) -> Any:
        import torch

        pos = session.cache.positions  # (layers, kv_heads, entries)
        ctx = context_mask(session, pos)
        count = int(ctx[0, 0].sum())
        m = min(max(n, self.chunk), count)
        prio = torch.gather(self.scores, 2, pos.clamp(max=self.scores.shape[2] - 1))
        prio = prio.masked_fill(~ctx, float("inf"))
        keep = prio.topk(pos.shape[2] - m, dim=2).indices
        return keep.sort(dim=2).values
