"""Measuring the reader honestly: KV-cache bytes from the real tensors, peak memory, clocks.

Why from the real tensors: the point of compression is a smaller cache; computing its size from a
formula (layers x heads x dims) would report what we expect, not what the library allocated (GQA,
dtype, padding and cache layouts all change it).
"""

from __future__ import annotations

import contextlib
import resource
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar


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


class PeakWindow:
    """Result of :meth:`DeviceClock.peak_window`.

    Attributes:
        bytes: CUDA max allocated on the clock's device during the window, or the process RSS
            high-water mark on CPU.
        shared: Another window on the same device overlapped this one, so ``bytes`` is the
            device's high-water mark over the overlapping calls (an upper bound for this call).
    """

    def __init__(self) -> None:
        self.bytes = 0
        self.shared = False


class DeviceClock:
    """Clock and peak memory of one explicit device.

    Why explicit: ``torch.cuda.synchronize()`` and ``max_memory_allocated()`` without a device
    act on the *current* device, so a reader on ``cuda:1`` was timed and measured on ``cuda:0``.

    Timing: on CUDA each thread runs its calls on its own stream (:meth:`stream`), and
    :meth:`now` waits for that stream only, so concurrent ``--workers`` threads do not wait for
    each other's kernels (they still share the GPU, which their times include).

    Peak memory is device-wide in PyTorch's allocator (one counter per device for the whole
    process), so it cannot be attributed to one of several concurrent threads: a window resets
    the counter only when no other window is open on the device, and a window that overlapped
    another is marked ``shared`` (its figure is then an upper bound).  Run with one worker for
    per-call peaks.
    """

    _active: ClassVar[dict[str, int]] = {}
    _active_lock = threading.Lock()

    def __init__(self, device: str) -> None:
        import torch

        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        self.device = dev
        self.cuda = dev.type == "cuda"
        self._local = threading.local()

    def stream(self) -> contextlib.AbstractContextManager[Any]:
        """This thread's own CUDA stream on the device (made current, with the device); no-op on
        CPU.  Work issued inside runs on it, and :meth:`now` synchronises only it."""
        if not self.cuda:
            return contextlib.nullcontext()
        import torch

        s = getattr(self._local, "stream", None)
        if s is None:
            s = self._local.stream = torch.cuda.Stream(device=self.device)
        return torch.cuda.stream(s)

    def now(self) -> float:
        """Seconds (perf_counter) after this thread's queued work on the device finished."""
        if self.cuda:
            import torch

            torch.cuda.current_stream(self.device).synchronize()
        return time.perf_counter()

    def reset_peak(self) -> None:
        """Start a fresh CUDA peak-memory window on the device (no-op on CPU)."""
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_bytes(self) -> int:
        """CUDA max allocated on the device since the last reset, or the process RSS mark."""
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated(self.device))
        return rss_high_water_bytes()

    @contextlib.contextmanager
    def peak_window(self) -> Iterator[PeakWindow]:
        """Peak memory of the calls inside (see the class docstring for the limits)."""
        key = str(self.device)
        win = PeakWindow()
        with self._active_lock:
            n = self._active.get(key, 0)
            self._active[key] = n + 1
            if n == 0:
                self.reset_peak()
            else:
                win.shared = True
        try:
            yield win
        finally:
            with self._active_lock:
                self._active[key] -= 1
                win.shared = win.shared or self._active[key] > 0
                win.bytes = self.peak_bytes()
