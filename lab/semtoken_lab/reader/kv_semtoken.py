"""SemToken's generation-time budget: context spans ranked by the current decoding query.

The seed paper (section 3.4) scores each past span ``x'_i`` by ``s_i = sim(q_t, mean h_j)``, the
similarity between the current query vector and the span's mean representation, recomputed while
generating, and filters the low-impact spans.  Two readings are implemented:

* :class:`SemTokenCosPolicy` (``semtoken-cos``) — the literal one: ``cos(q_t, mean_j k_j)``
  between the current (post-rotary) query and the mean of the span's cached keys, per layer and
  query head against its KV group, averaged over heads and layers; whole spans are evicted,
  lowest first, the same in every layer and head.  Keys rather than hidden states because
  ``q_t . mean(k_j)`` is the span's mean attention logit: the cosine then measures what attention
  would read.
* :class:`SemTokenPolicy` (``semtoken``, the default) — the span's share of the query's attention,
  computed exactly: ``s_i = mean_{j in span} softmax_j(q_t . k_j * scale)``, averaged over the
  queries seen so far (the question's last ``query_window`` tokens at prefill, then every
  ``recompute_every``-th decoding query) and over each KV group's query heads, and ranked per
  layer and KV head.  Every context entry inherits its span's score, so a span is kept or evicted
  as a unit (only the last span evicted in an eviction may go in part, its lowest-attention tokens
  first, so that every row keeps the same number of entries).
* :class:`SemTokenStaticPolicy` (``semtoken-static``) — the paper's "w/o AR-budget" ablation in
  this frame: the same scores from the prompt's queries only, never refreshed while decoding.

Why both: measured on a NarrativeQA development split (docs/kv_budget.md), the literal cosine to
a mean key lost most of the answer log-likelihood at budget 0.5 — averaging keys over ~30 tokens
blurs the one token a query needs, and one shared choice for every head discards what different
heads read.  The attention-share reading keeps the paper's design (semantic spans, the current
query, re-scored while generating) with the scoring attention actually uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semtoken_lab.reader.kv_policies import KVPolicy, PolicySession, context_mask, shared_keep


def _span_of(session: PolicySession, positions: Any) -> Any:
    """Span index of each entry of ``positions`` (``-1`` outside the context)."""
    import torch

    lay = session.layout
    ctx = context_mask(session, positions)
    out = torch.full_like(positions, -1)
    out[ctx] = torch.as_tensor(lay.token_span)[positions[ctx] - lay.context_start]
    return out


class SemTokenPolicy(KVPolicy):
    """Spans ranked by their mean attention under the current query, per layer and KV head.

    Args:
        query_window: Prompt queries the first scores average over.
        chunk: At least this many entries are evicted at once (fewer cache copies).
    """

    name = "semtoken"
    per_head = True
    decode_queries = True

    def __init__(self, query_window: int = 32, chunk: int = 16, **_: Any) -> None:
        self.query_window, self.chunk = query_window, chunk
        self.attention: Any = None  # (layers, kv_heads, positions) summed attention
        self._seen = 0

    @property
    def prefill_rows(self) -> int:
        return self.query_window

    def start(self, session: PolicySession, queries: Any) -> None:
        if queries is not None:
            self.observe(session, queries[:, :, -self.query_window :])

    def observe(self, session: PolicySession, query: Any) -> None:
        """Add the attention of ``query`` rows ``(layers, heads, rows, dim)`` to the scores."""
        import torch

        cache = session.cache
        pos = cache.positions  # (L, KV, S)
        rows = query.shape[2]
        q_pos = torch.arange(cache.next_position - rows, cache.next_position)
        per_layer = []
        for layer, q, p in zip(cache.kv_layers, query.float(), pos, strict=True):
            keys = layer.keys[0].float()  # (KV, S, D)
            kv_heads = keys.shape[0]
            logits = q.reshape(kv_heads, -1, q.shape[-1]) @ keys.transpose(1, 2)  # (KV, G*R, S)
            logits = logits.view(kv_heads, -1, rows, keys.shape[1]) * session.query_scaling
            future = p[:, None, None, :] > q_pos[None, None, :, None]  # causal (prefill rows)
            attn = torch.softmax(logits.masked_fill(future, float("-inf")), dim=-1)
            per_layer.append(attn.sum(dim=2).mean(dim=1))  # (KV, S): summed over rows
        if self.attention is None or self.attention.shape[2] < cache.next_position:
            grown = pos.new_zeros((*pos.shape[:2], cache.next_position + 256), dtype=torch.float32)
            if self.attention is not None:
                grown[:, :, : self.attention.shape[2]] = self.attention
            self.attention = grown
        self.attention.scatter_add_(2, pos, torch.stack(per_layer))
        self._seen += rows

    def evict_context(self, session: PolicySession, n: int) -> Any:
        import torch

        pos = session.cache.positions
        ctx = context_mask(session, pos)
        m = min(max(n, self.chunk), int(ctx[0, 0].sum()))
        token = torch.gather(self.attention, 2, pos)  # (L, KV, S) per-entry attention
        span = _span_of(session, pos).clamp(min=0)
        n_spans = max(session.layout.n_spans, 1)
        sums = token.new_zeros((*pos.shape[:2], n_spans)).scatter_add_(2, span, token * ctx)
        counts = token.new_zeros(sums.shape).scatter_add_(2, span, ctx.float())
        density = sums / counts.clamp(min=1.0)  # mean attention per present token of the span
        prio = torch.gather(density, 2, span) + 1e-6 * token  # ties: the token's own attention
        prio = prio.masked_fill(~ctx, float("inf"))
        keep = prio.topk(pos.shape[2] - m, dim=2).indices
        return keep.sort(dim=2).values


class SemTokenStaticPolicy(SemTokenPolicy):
    """Ablation ("w/o AR-budget"): the prompt's queries only, never re-scored while decoding."""

    name = "semtoken-static"
    decode_queries = False


class SemTokenCosPolicy(KVPolicy):
    """The paper's literal score: ``cos(q_t, mean key of the span)``; whole spans, shared."""

    name = "semtoken-cos"
    decode_queries = True

    def __init__(self, **_: Any) -> None:
        self.span_keys: Any = None  # (layers, kv_heads, spans, dim), unit-normalised
        self._sum: Any = None
        self._seen = 0
        self.scores: np.ndarray | None = None  # (spans,)

    @property
    def prefill_rows(self) -> int:
        return 1

    def start(self, session: PolicySession, queries: Any) -> None:
        import torch

        lay, cache = session.layout, session.cache
        span = torch.as_tensor(lay.token_span, dtype=torch.long)
        n = max(lay.n_spans, 1)
        counts = torch.bincount(span, minlength=n).clamp(min=1).float()[:, None]
        means = []
        for layer in cache.kv_layers:
            keys = layer.keys[0, :, lay.context_start : lay.context_end].float()
            sums = keys.new_zeros(keys.shape[0], n, keys.shape[-1]).index_add_(1, span, keys)
            means.append(sums / counts)
        self.span_keys = torch.nn.functional.normalize(torch.stack(means), dim=-1)
        if queries is not None:
            self.observe(session, queries[:, :, -1:])

    def observe(self, session: PolicySession, query: Any) -> None:
        import torch

        q = torch.nn.functional.normalize(query[:, :, -1].float(), dim=-1)  # (L, H, D)
        n_layers, kv_heads = self.span_keys.shape[:2]
        qg = q.reshape(n_layers, kv_heads, -1, q.shape[-1])  # (L, KV, G, D)
        self.scores = torch.einsum("lkgd,lknd->n", qg, self.span_keys).numpy() / (
            qg.shape[0] * qg.shape[1] * qg.shape[2]
        )

    def evict_context(self, session: PolicySession, n: int) -> Any:
        import torch

        row = session.cache.positions[0, 0]
        ctx = context_mask(session, row)
        span_of = _span_of(session, row)
        present = torch.bincount(span_of[ctx], minlength=session.layout.n_spans).numpy()
        scores = self.scores if self.scores is not None else np.zeros(len(present))
        gone: list[int] = []
        freed = 0
        for s in (int(s) for s in np.argsort(scores, kind="stable") if present[s] > 0):
            if freed >= n:
                break
            gone.append(s)
            freed += int(present[s])
        drop = torch.isin(span_of, torch.as_tensor(gone, dtype=torch.long)) & ctx
        return shared_keep(drop)
