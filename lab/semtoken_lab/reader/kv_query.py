"""Recording the attention queries of chosen positions, with their rotary embedding applied.

Why: both query-aware KV policies score cached entries against the model's own attention
queries — SemToken with the current decoding query ``q_t`` (paper section 3.4), SnapKV with the
queries of the prompt's last window.  transformers' SDPA path never returns queries or attention
weights, and switching the model to eager attention for ``output_attentions`` would materialise
a ``(heads, n, n)`` matrix per layer at prefill.  The cheapest correct source is a PyTorch forward
hook on each layer's query projection (``q_norm`` when the model normalises queries after the
projection, else ``q_proj``): its output is the pre-rotary query, already computed by the model,
so nothing of the attention is recomputed or copied; the rotary embedding is then applied with
the model's own ``rotary_emb`` module and its modeling file's ``apply_rotary_pos_emb``, exactly as
the cached keys were rotated.  Only the recorded rows are kept (one token while decoding, the
observation window at prefill), and the hooks record nothing unless armed by the owning thread.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from semtoken_rag.errors import ConfigError


def _query_module(attn: Any) -> Any:
    norm = getattr(attn, "q_norm", None)
    return norm if norm is not None else getattr(attn, "q_proj", None)


def _rope_function(attn: Any) -> Callable[..., Any] | None:
    fn = getattr(sys.modules.get(type(attn).__module__), "apply_rotary_pos_emb", None)
    if fn is None:
        return None
    params = list(inspect.signature(fn).parameters)
    return fn if params[:4] == ["q", "k", "cos", "sin"] else None


class QueryProbe:
    """Forward hooks that capture post-rotary attention queries of the last ``rows`` positions.

    Use as ``with probe.attached(): probe.arm(rows); model(...); q = probe.take(positions)``.

    Args:
        model: A loaded causal LM with rotary attention (Llama, Mistral, Qwen2/3, ...).
        policy: Name of the policy that needs the queries (for the error message).

    Raises:
        ConfigError: the model has no per-layer query projection or rotary embedding this
            probe understands (the message names the model class).
    """

    def __init__(self, model: Any, policy: str) -> None:
        decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
        layers = list(getattr(decoder, "layers", None) or [])
        attns = [getattr(layer, "self_attn", None) for layer in layers]
        mods = [_query_module(a) for a in attns]
        rotary = getattr(decoder, "rotary_emb", None)
        rope = _rope_function(attns[0]) if attns and attns[0] is not None else None
        if not layers or any(m is None for m in mods) or rotary is None or rope is None:
            raise ConfigError(
                f"kv_policy {policy!r} needs each layer's attention queries (self_attn.q_proj) "
                f"and rotary position embeddings; {type(model).__name__} does not expose them. "
                "Use kv_policy='streaming' or kv_budget=None for this model"
            )
        self._mods = mods
        self._rotary: Callable[..., Any] = rotary
        self._rope: Callable[..., Any] = rope
        self.head_dim = int(attns[0].head_dim)  # type: ignore[union-attr]
        self.scaling = float(getattr(attns[0], "scaling", self.head_dim**-0.5))
        self._rows = 0
        self._owner: int | None = None
        self._captured: list[Any] = [None] * len(mods)

    @contextlib.contextmanager
    def attached(self) -> Iterator[QueryProbe]:
        """Register the hooks for the duration of the block (removed even on error)."""
        handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self._mods)]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()
            self._rows, self._owner = 0, None

    def _hook(self, layer: int) -> Callable[..., None]:
        def hook(module: Any, args: Any, output: Any) -> None:
            if self._rows and threading.get_ident() == self._owner:
                self._captured[layer] = output[:, -self._rows :].detach()

        return hook

    def arm(self, rows: int) -> None:
        """Record the last ``rows`` query positions of the next forward pass (this thread)."""
        self._rows, self._owner = int(rows), threading.get_ident()
        self._captured = [None] * len(self._mods)

    def take(self, positions: Any) -> Any:
        """Post-rotary queries of the armed forward pass, ``(layers, heads, rows, head_dim)``.

        Args:
            positions: 1-D int64 tensor, the absolute positions of the recorded rows.
        """
        import torch

        if any(c is None for c in self._captured):
            raise RuntimeError("QueryProbe.take() without an armed forward pass")
        rows, self._rows = self._rows, 0
        q = torch.stack(
            [c.reshape(1, rows, -1, self.head_dim).transpose(1, 2)[0] for c in self._captured]
        )  # (layers, heads, rows, dim), pre-rotary
        cos, sin = self._rotary(q, positions.view(1, -1))
        rotated, _ = self._rope(q, q, cos, sin)
        self._captured = [None] * len(self._mods)
        return rotated.float()
