"""Choosing the attention kernel, the device and the dtype of the reader, and saying why.

Reading time is what compression is supposed to save, so the reader must run the fastest kernel
the machine has and report which one that was: FlashAttention-2 when CUDA and the ``flash_attn``
package are present, else PyTorch SDPA (which itself may dispatch to a flash backend on CUDA),
``eager`` only on request.  Each choice is a resolver in a registry, not an if/elif chain.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from semtoken_rag.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttentionChoice:
    """The attention implementation to load the model with.

    Attributes:
        implementation: Value passed to transformers' ``attn_implementation``.
        label: What is reported (e.g. ``sdpa(flash)`` when SDPA's flash backend is enabled).
        reason: One line on why it was chosen.
    """

    implementation: str
    label: str
    reason: str


def flash_attn_available(device: str) -> bool:
    """CUDA device and the ``flash_attn`` package importable (found without importing it)."""
    if not device.startswith("cuda"):
        return False
    try:
        return importlib.util.find_spec("flash_attn") is not None
    except (ImportError, ValueError):
        return False


def _sdpa(device: str, reason: str) -> AttentionChoice:
    import torch

    label = "sdpa"
    if device.startswith("cuda") and torch.backends.cuda.flash_sdp_enabled():
        label = "sdpa(flash)"
    return AttentionChoice("sdpa", label, reason)


def _auto(device: str, strict: bool) -> AttentionChoice:
    if flash_attn_available(device):
        return AttentionChoice("flash_attention_2", "flash_attention_2", "CUDA + flash_attn found")
    why = "no CUDA" if not device.startswith("cuda") else "flash_attn not installed"
    return _sdpa(device, f"auto: {why}")


def _flash(device: str, strict: bool) -> AttentionChoice:
    if flash_attn_available(device):
        return AttentionChoice("flash_attention_2", "flash_attention_2", "requested")
    why = "no CUDA device" if not device.startswith("cuda") else "flash_attn is not installed"
    if strict:
        raise ConfigError(
            f"attn='flash_attention_2' was requested with strict=True but {why}; install "
            "`flash-attn` on a CUDA machine or use attn='auto'/'sdpa'"
        )
    msg = f"flash_attention_2 requested but {why}; falling back to sdpa"
    warnings.warn(msg, RuntimeWarning, stacklevel=4)
    logger.warning(msg)
    return _sdpa(device, f"fallback: {why}")


def _plain(name: str) -> Callable[[str, bool], AttentionChoice]:
    def resolve(device: str, strict: bool) -> AttentionChoice:
        if name == "sdpa":
            return _sdpa(device, "requested")
        return AttentionChoice(name, name, "requested")

    return resolve


#: attn argument -> resolver(device, strict).
ATTENTION_RESOLVERS: dict[str, Callable[[str, bool], AttentionChoice]] = {
    "auto": _auto,
    "flash_attention_2": _flash,
    "sdpa": _plain("sdpa"),
    "eager": _plain("eager"),
}


def resolve_attention(attn: str, device: str, *, strict: bool = False) -> AttentionChoice:
    """Pick the attention implementation for ``device``.

    Raises:
        ConfigError: unknown ``attn``, or flash-attn requested with ``strict`` but unavailable.
    """
    resolver = ATTENTION_RESOLVERS.get(attn)
    if resolver is None:
        raise ConfigError(f"unknown attn {attn!r}; choose one of {sorted(ATTENTION_RESOLVERS)}")
    choice = resolver(device, strict)
    logger.info("reader attention: %s (%s)", choice.label, choice.reason)
    return choice


def _auto_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


#: device argument -> resolver (explicit devices such as ``cuda:1`` pass through).
DEVICE_RESOLVERS: dict[str, Callable[[], str]] = {"auto": _auto_device}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else unchanged."""
    resolver = DEVICE_RESOLVERS.get(device)
    return resolver() if resolver is not None else device


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
    if device.startswith("cuda"):
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
