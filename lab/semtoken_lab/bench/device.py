"""The benchmark's device: which one, how to synchronise with it, its peak memory, its facts.

Why one module: every section must time the *same* device the same way.  GPU work is
asynchronous, so a host clock read without a synchronise measures kernel launches, not
kernels; :func:`semtoken_lab.bench.timing.measure` times CUDA calls with CUDA events after a
synchronise (the events bracket host gaps too, so a mixed host/GPU path such as a compression
is timed whole).  Peak memory is PyTorch's allocator high-water mark on that device.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from typing import Any

from semtoken_rag.errors import ConfigError


def is_cuda(device: str | None) -> bool:
    """``cuda`` / ``cuda:N``."""
    return device is not None and str(device).startswith("cuda")


def auto_device() -> str:
    """``cuda`` when PyTorch sees a GPU, else ``cpu`` (the engine's ``auto``)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def engine_config(device: str | None, encoder_model: str | None) -> dict[str, Any]:
    """``SemTokenConfig`` keyword arguments for a bench device and encoder (empty: defaults)."""
    kw: dict[str, Any] = {}
    if device:
        kw["device"] = engine_device(device)
    if encoder_model:
        kw["encoder_model"] = str(encoder_model)
    return kw


def resolve_bench_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; a CUDA device is checked and made
    current (so engine parts that take only ``cuda`` land on it).

    Raises:
        ConfigError: a CUDA device that is not there.
    """
    import torch

    if device == "auto":
        device = auto_device()
    if is_cuda(device):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {device}: no such CUDA device ({torch.cuda.device_count()} visible)"
            )
        torch.cuda.set_device(index)
        return f"cuda:{index}"
    if device != "cpu":
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return device


def engine_device(device: str) -> str:
    """The engine config's device for a bench device (its config takes ``cuda``, not ``cuda:N``;
    :func:`resolve_bench_device` made ``N`` current)."""
    return "cuda" if is_cuda(device) else device


def synchronize(device: str | None) -> None:
    """Wait for all queued work on ``device`` (no-op on CPU)."""
    if is_cuda(device):
        import torch

        torch.cuda.synchronize(device)


class PeakMemory:
    """GPU allocator peak of a section (``bytes`` is 0 on CPU)."""

    bytes: int = 0


@contextlib.contextmanager
def gpu_peak(device: str | None) -> Iterator[PeakMemory]:
    """Peak bytes allocated by PyTorch on ``device`` inside the block (0 on CPU)."""
    peak = PeakMemory()
    if not is_cuda(device):
        yield peak
        return
    import torch

    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    try:
        yield peak
    finally:
        synchronize(device)
        peak.bytes = int(torch.cuda.max_memory_allocated(device))


def _nvidia_smi(field: str) -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def device_info(device: str) -> dict[str, Any]:
    """What a reader of the figures needs about the device: GPU name, memory, driver, CUDA,
    cuDNN and library versions (``{"device": "cpu"}`` plus versions on a CPU)."""
    import torch
    import transformers

    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if is_cuda(device):
        props = torch.cuda.get_device_properties(device)
        info.update(
            {
                "gpu": props.name,
                "capability": f"{props.major}.{props.minor}",
                "multiprocessors": props.multi_processor_count,
                "memory_bytes": int(props.total_memory),
                "cuda_runtime": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "driver": _nvidia_smi("driver_version"),
            }
        )
    return info
