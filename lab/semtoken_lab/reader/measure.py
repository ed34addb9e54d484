"""Measuring the reader honestly: KV-cache bytes from the real tensors, peak memory, clocks.

Why from the real tensors: the point of compression is a smaller cache; computing its size from a
formula (layers x heads x dims) would report what we expect, not what the library allocated (GQA,
dtype, padding and cache layouts all change it).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from typing import Any


def _layer_tensors(cache: Any) -> Iterator[Any]:
    """Key/value tensors of a cache, for the layouts transformers has used."""
    layers = getattr(cache, "layers", None)
    if layers is not None:  # transformers >= 4.56 / 5.x: Cache.layers[i].keys / .values
        for layer in layers:
            for name in ("keys", "values"):
                t = getattr(layer, name, None)
                if t is not None:
                    yield t
        return
    if hasattr(cache, "key_cache"):  # transformers 4.3x-4.5x DynamicCache
        yield from cache.key_cache
        yield from cache.value_cache
        return
    if isinstance(cache, (tuple, list)):  # legacy tuple of (key, value) per layer
        for item in cache:
            if isinstance(item, (tuple, list)):
                yield from (t for t in item if hasattr(t, "nbytes"))
            elif hasattr(item, "nbytes"):
                yield item


def cache_nbytes(cache: Any) -> int:
    """Sum of ``nbytes`` of every key and value tensor in ``cache`` (0 for ``None``)."""
    if cache is None:
        return 0
    return int(sum(int(t.numel()) * int(t.element_size()) for t in _layer_tensors(cache)))


def rss_high_water_bytes() -> int:
    """Process RSS high-water mark (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class DeviceClock:
    """Wall clock that waits for the device before reading the time.

    Why: CUDA kernels run asynchronously; without a synchronize a prefill "takes" microseconds.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def now(self) -> float:
        """Seconds (perf_counter) after all queued device work finished."""
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def reset_peak(self) -> None:
        """Start a fresh CUDA peak-memory window (no-op on CPU)."""
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()

    def peak_bytes(self) -> int:
        """CUDA max allocated since :meth:`reset_peak`, or the process RSS high-water mark."""
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated())
        return rss_high_water_bytes()
