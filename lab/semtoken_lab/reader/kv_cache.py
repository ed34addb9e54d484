"""A transformers ``DynamicCache`` whose entries can be evicted, and which knows their positions.

Why a cache class of our own (a ``DynamicCache`` subclass) rather than patched model code: the
cache is the documented extension point of transformers' generation loop.  The model appends each
step's keys and values through ``Cache.update``; between two forward passes we may drop entries
with :meth:`BudgetedCache.retain`.  Rotary position embeddings are already applied to the cached
keys, so a kept entry stays correct wherever it sits in the tensor; only the *next* token's
position must be its true absolute position, which the caller passes as ``position_ids``
(:attr:`BudgetedCache.next_position`), never the (shrunken) cache length.

Only full-attention :class:`~transformers.cache_utils.DynamicLayer` layers can be evicted from
freely: a sliding-window layer drops entries on its own, a quantized layer stores its keys
elsewhere, a linear-attention layer has no per-token entries.  :func:`check_evictable` refuses
those with an error naming the model class, so a budget is never silently ignored.
"""

from __future__ import annotations

from typing import Any, cast

from semtoken_rag.errors import ConfigError
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from semtoken_lab.reader.measure import cache_nbytes


def check_evictable(model: Any, policy: str) -> None:
    """Raise unless every layer of ``model``'s dynamic cache is a plain full-attention layer.

    Raises:
        ConfigError: the cache the model builds has layers a KV budget cannot evict from
            (sliding-window, quantized, linear-attention, shared); the message names the
            model class and the layer types.
    """
    layers = DynamicCache(config=model.config).layers
    bad = sorted({type(layer).__name__ for layer in layers if type(layer) is not DynamicLayer})
    if not layers or bad:
        kinds = ", ".join(bad) if bad else "no attention layers"
        raise ConfigError(
            f"kv_policy {policy!r} cannot bound the KV cache of {type(model).__name__}: its "
            f"cache has {kinds} (only full-attention DynamicLayer caches can be evicted from); "
            "use kv_budget=None for this model"
        )


class BudgetedCache(DynamicCache):
    """A ``DynamicCache`` (batch size 1) with eviction and per-entry absolute positions.

    ``positions`` is a ``(layers, kv_heads, entries)`` int64 tensor: the absolute position of
    every cached entry.  It is the same in every row for policies that evict the same entries
    everywhere, and differs per head for per-head policies (SnapKV); every row always holds
    the same number of entries, so the key/value tensors keep their rectangular shape.

    Args:
        config: The model config (layer types are taken from it); ``None`` replicates plain
            ``DynamicLayer`` layers lazily.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config=config)
        self.positions: Any = None
        self._next = 0

    # ------------------------------------------------------------------ bookkeeping
    @property
    def kv_layers(self) -> list[Any]:
        """The layers (all ``DynamicLayer`` after :func:`check_evictable`), for tensor access."""
        return cast(list[Any], self.layers)

    @property
    def next_position(self) -> int:
        """Absolute position of the next token fed to the model."""
        return self._next

    @property
    def n_entries(self) -> int:
        """Cached entries per (layer, head) row."""
        return 0 if self.positions is None else int(self.positions.shape[-1])

    def record_positions(self, positions: Any) -> None:
        """Note the absolute positions of the tokens the last forward pass appended.

        Args:
            positions: 1-D int64 tensor, in the order the tokens were fed.
        """
        import torch

        rows = (len(self.layers), self._kv_heads())
        new = positions.to(torch.long).view(1, 1, -1).expand(*rows, -1)
        self.positions = (
            new.clone() if self.positions is None else torch.cat([self.positions, new], dim=-1)
        )
        self._next = int(positions.max()) + 1
        if self.positions.shape[-1] != self.get_seq_length():
            raise RuntimeError(
                f"cache holds {self.get_seq_length()} entries but {self.positions.shape[-1]} "
                "positions were recorded"
            )

    def _kv_heads(self) -> int:
        return int(self.kv_layers[0].keys.shape[1])

    def nbytes(self) -> int:
        """Bytes of the key and value tensors actually held (measured, not computed)."""
        return cache_nbytes(self)

    # ------------------------------------------------------------------ eviction
    def retain(self, index: Any) -> None:
        """Keep only the entries at ``index`` (in cache order), in every layer.

        Args:
            index: ``(k,)`` entry indices shared by every layer and head, or
                ``(layers, kv_heads, k)`` indices per row.  Sorted indices keep the cache in
                position order (not required for correctness: positions live in the keys).
        """
        import torch

        n_layers, heads = len(self.layers), self._kv_heads()
        if index.dim() == 1:
            for layer in self.kv_layers:
                layer.keys = layer.keys.index_select(-2, index)
                layer.values = layer.values.index_select(-2, index)
            self.positions = self.positions.index_select(-1, index)
            return
        if tuple(index.shape[:2]) != (n_layers, heads):
            raise ValueError(f"per-row index of shape {tuple(index.shape)} for {n_layers}x{heads}")
        for i, layer in enumerate(self.kv_layers):
            gather = index[i][None, :, :, None].expand(1, heads, -1, layer.keys.shape[-1])
            layer.keys = torch.gather(layer.keys, 2, gather)
            layer.values = torch.gather(layer.values, 2, gather)
        self.positions = torch.gather(self.positions, 2, index)

    def clone(self) -> BudgetedCache:
        """An independent copy, so one prefill can seed several policies.

        Built through the public ``Cache.update`` (a fresh ``DynamicLayer`` concatenates the
        tensors onto an empty one, i.e. copies them).
        """
        twin = BudgetedCache(None)
        for i, layer in enumerate(self.kv_layers):
            twin.update(layer.keys, layer.values, i)
        twin.positions = None if self.positions is None else self.positions.clone()
        twin._next = self._next
        return twin
