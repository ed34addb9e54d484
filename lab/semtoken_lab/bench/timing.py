"""Timing primitives: warm-up then medians, peak memory, the scaling exponent, machine facts.

Why medians after a warm-up: the first call pays lazy imports, allocator growth and thread-pool
start-up; a median of a few repeats is robust to the odd scheduler hiccup on a small shared CPU.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Wall times of repeated calls of one closure.

    Attributes:
        median_ms: Median over the timed repeats.
        min_ms: Fastest timed repeat.
        samples_ms: Every timed repeat, in order.
    """

    median_ms: float
    min_ms: float
    samples_ms: tuple[float, ...]


def measure(
    fn: Callable[[], object], repeats: int, warmup: int = 1, device: str | None = None
) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    Args:
        device: When a CUDA device, each call is bracketed by CUDA events on the current
            stream after a synchronise, and the time is the events' elapsed time (queued
            kernels included; host gaps too, as the events are recorded when the host gets
            there).  Otherwise a host clock.
    """
    for _ in range(warmup):
        fn()
    cuda = device is not None and str(device).startswith("cuda")
    times = []
    for _ in range(max(1, repeats)):
        if cuda:
            times.append(_cuda_event_ms(fn, str(device)))
            continue
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return Timing(statistics.median(times), min(times), tuple(times))


def _cuda_event_ms(fn: Callable[[], object], device: str) -> float:
    import torch

    torch.cuda.synchronize(device)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return float(start.elapsed_time(end))


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in ms (see :func:`measure`)."""
    return measure(fn, repeats, warmup).median_ms


def traced_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated through Python's allocators (numpy included) during one call.

    Why tracemalloc: the process RSS high-water mark is dominated by the models and never
    decreases, so it cannot attribute memory to one stage; tracemalloc sees numpy buffers (not
    torch's own allocator, which is why :func:`rss_high_water_bytes` is reported too).
    """
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was:
            tracemalloc.stop()
    return max(0, peak - base)


def rss_high_water_bytes() -> int:
    """The process's resident-set high-water mark (Linux ``ru_maxrss`` is in KiB)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def fit_exponent(sizes: list[float], times: list[float]) -> float | None:
    """Least-squares slope ``k`` of ``log t`` on ``log n`` (``t ~ n^k``); ``None`` if < 2 points."""
    pts = [(math.log(n), math.log(t)) for n, t in zip(sizes, times, strict=True) if n > 0 and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Facts a reader needs to compare timings: CPU, cores, torch threads and versions."""
    import numpy as np
    import torch

    blas: list[dict[str, Any]] = []
    try:
        from threadpoolctl import threadpool_info

        blas = [
            {
                "api": i.get("internal_api"),
                "threads": i.get("num_threads"),
                "library": Path(str(i.get("filepath", ""))).name,
            }
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except ImportError:
        pass
    return {
        "cpu_model": _cpu_model(),
        "blas_threads": blas,
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def limit_threads(n: int) -> Any:
    """Limit torch *and* numpy's BLAS to ``n`` threads for the rest of the process.

    Why BLAS too: on a busy 2-core machine OpenBLAS worker threads turn a 39 x 384 similarity
    product from 0.04 ms into ~12 ms (measured), which would be charged to the core.

    Returns:
        The ``threadpoolctl`` limiter (keep a reference), or ``None`` when it is not installed.
    """
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n, user_api="blas")
