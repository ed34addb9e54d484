"""Typed results of the reader: an answer with its cost, and an answer's log-likelihood."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from semtoken_lab.reader.kv_budget import KVTrace


@dataclass(frozen=True)
class ReaderAnswer:
    """A greedy answer and what it cost to produce.

    Attributes:
        text: The decoded answer (special tokens removed, stripped).
        prompt_tokens: Tokens of the chat-templated prompt (padding excluded).
        prefill_ms: Wall time of the prefill forward pass over the prompt.
        ttft_ms: Time to first token: from the call (prompt building and tokenisation included)
            until the first generated token id is on the host.
        decode_ms_per_token: Mean wall time of one decode step after the first token (0 when
            only one token was generated).
        new_tokens: Tokens generated (the end-of-turn token included when it was produced).
        kv_bytes: Bytes of the key/value cache tensors right after prefill (for a batch: this
            example's share, i.e. bytes per cached token slot times its prompt tokens).
        peak_memory_bytes: CUDA max allocated during the call, or the process's RSS high-water
            mark on CPU (process-wide, so it never decreases).
        attn_implementation: Attention kernel actually used (e.g. ``sdpa``, ``sdpa(flash)``).
        device: Device the model ran on.
        kv_trace: With a KV budget, what the cache held while decoding (a
            :class:`~semtoken_lab.reader.kv_budget.KVTrace`; ``kv_bytes`` is then the cache
            when decoding starts, after the budget's first eviction); else ``None``.
    """

    text: str
    prompt_tokens: int
    prefill_ms: float
    ttft_ms: float
    decode_ms_per_token: float
    new_tokens: int
    kv_bytes: int
    peak_memory_bytes: int
    attn_implementation: str
    device: str
    kv_trace: KVTrace | None = None


@dataclass(frozen=True)
class AnswerLoglik:
    """Teacher-forced log-likelihood of a gold answer as the assistant's reply.

    Why: a smooth quality signal for small readers whose free-form answers are noisy; the
    compression harness reports how much of the full-context log-likelihood a method retains.

    Attributes:
        total: Sum of the natural-log probabilities of the answer tokens.
        per_token: ``total / n_tokens`` (mean log-prob per answer token).
        n_tokens: Answer tokens scored.
    """

    total: float
    per_token: float
    n_tokens: int
