"""Choosing the reader's device and dtype, and saying why.

Why apart from the attention kernel (:mod:`semtoken_lab.reader.attention`): where the model runs
and in which precision are decided first, from the machine alone; the kernel is chosen for that
device afterwards.  Each choice is a resolver in a registry, not an if/elif chain.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from semtoken_rag.errors import ConfigError

logger = logging.getLogger(__name__)


def is_cuda(device: str) -> bool:
    """``cuda`` / ``cuda:N``."""
    return str(device).startswith("cuda")


def _auto_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


#: device argument -> resolver (explicit devices such as ``cuda:1`` pass through).
DEVICE_RESOLVERS: dict[str, Callable[[], str]] = {"auto": _auto_device}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else unchanged.

    Raises:
        ConfigError: a CUDA device that does not exist here, or a device string torch cannot
            parse (``gpu``, ``cuda:x``): refused here, not after the model has loaded.
    """
    import torch

    resolver = DEVICE_RESOLVERS.get(device) if isinstance(device, str) else None
    chosen = resolver() if resolver is not None else device
    try:
        parsed = torch.device(chosen) if isinstance(chosen, str) else None
    except RuntimeError:
        parsed = None
    if parsed is None:
        raise ConfigError(
            f"unknown device {device!r:.60}; use 'auto', 'cpu', 'cuda', 'cuda:N' or another "
            "device string torch accepts"
        )
    if is_cuda(chosen):
        index = parsed.index or 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r}: CUDA device {index} is not available "
                f"({torch.cuda.device_count()} visible)"
            )
    return chosen


def cpu_supports_bf16() -> bool:
    """Whether this CPU has fast bf16 matrix units (AMX).

    Why: AVX512-BF16 alone is not enough.  Measured on this project's CI CPU (AVX512-BF16, no
    AMX), SmolLM2-135M scored an answer in 2.45 s in bf16 against 1.45 s in fp32, so
    ``dtype='auto'`` picks bf16 on a CPU only where AMX tiles make it pay.  Uses a private
    ``torch.cpu`` probe, guarded for other builds.
    """
    import torch

    fn = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(fn is not None and fn())
    except Exception:  # a failing probe only means "unknown"
        return False


#: Environment variable that overrides what ``dtype="auto"`` picks (any name of
#: :data:`DTYPE_RESOLVERS` but ``auto``): runs the whole test suite or an eval in one dtype
#: whatever the CPU (``SEMTOKEN_READER_DTYPE=bfloat16 pytest``).
DTYPE_ENV = "SEMTOKEN_READER_DTYPE"


def _auto_dtype(device: str) -> Any:
    import torch

    forced = os.environ.get(DTYPE_ENV, "").strip()
    if forced and forced != "auto":
        resolver = DTYPE_RESOLVERS.get(forced)
        if resolver is None:
            raise ConfigError(
                f"{DTYPE_ENV}={forced!r} is not a dtype; choose one of {sorted(DTYPE_RESOLVERS)}"
            )
        return resolver(device)
    if is_cuda(device):
        with torch.cuda.device(torch.device(device)):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def _fixed(name: str) -> Callable[[str], Any]:
    def resolve(device: str) -> Any:
        import torch

        return getattr(torch, name)

    return resolve


#: dtype argument -> resolver(device).
DTYPE_RESOLVERS: dict[str, Callable[[str], Any]] = {
    "auto": _auto_dtype,
    "float32": _fixed("float32"),
    "fp32": _fixed("float32"),
    "bfloat16": _fixed("bfloat16"),
    "bf16": _fixed("bfloat16"),
    "float16": _fixed("float16"),
    "fp16": _fixed("float16"),
}


def resolve_dtype(dtype: Any, device: str) -> Any:
    """A ``torch.dtype`` for the reader (``auto``: bf16 on CUDA / bf16-capable CPUs, else fp32).

    Raises:
        ConfigError: unknown dtype name.
    """
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    resolver = DTYPE_RESOLVERS.get(str(dtype))
    if resolver is None:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPE_RESOLVERS)}")
    chosen = resolver(device)
    logger.info("reader dtype: %s on %s (requested %s)", chosen, device, dtype)
    return chosen
