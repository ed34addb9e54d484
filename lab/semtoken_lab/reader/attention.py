"""Choosing the attention kernel of the reader, and saying why.

Reading time is what compression is supposed to save, so the reader must run the fastest kernel
the machine has and report which one *ran*, not which one was merely enabled:

* ``flash_attention_2`` with the ``flash_attn`` package on CUDA: transformers' FA2 integration.
* ``flash_attention_2`` on CUDA *without* the package: the same FlashAttention-2 algorithm through
  PyTorch SDPA with the backend **forced** (``torch.nn.attention.sdpa_kernel``).  A forced
  backend raises instead of silently dispatching elsewhere, so a forward pass that returns
  proves the kernel ran; only then is ``sdpa(flash)`` reported.  Flash cannot run on an explicit
  mask (a left-padded batch) or in fp32: such calls run under SDPA's own dispatch and are
  reported as ``sdpa`` (:class:`AttentionRuntime`).
* ``auto``: on CUDA the fastest SDPA backend that works, *measured* on the loaded model
  (:func:`fastest_sdpa_backend`); on a CPU plain SDPA (its dispatcher picks the CPU flash kernel
  itself; measuring on a small shared CPU would cost seconds on every load and decide nothing).
* ``sdpa`` / ``eager``: as requested.

Each choice is a resolver in a registry, not an if/elif chain.  The device and the dtype are
chosen in :mod:`semtoken_lab.reader.placement`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from semtoken_rag.errors import ConfigError

from semtoken_lab.reader.placement import is_cuda

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: SDPA backend name -> the label reported when a forward pass forced to it returned.
SDPA_LABELS: dict[str, str] = {
    "FLASH_ATTENTION": "sdpa(flash)",
    "EFFICIENT_ATTENTION": "sdpa(efficient)",
    "CUDNN_ATTENTION": "sdpa(cudnn)",
    "MATH": "sdpa(math)",
}
#: Messages of the RuntimeError PyTorch raises when no allowed SDPA backend can run the call.
_NO_KERNEL = ("No available kernel", "No viable backend")


@dataclass(frozen=True)
class AttentionChoice:
    """The attention implementation to load the model with, and how forward passes run.

    Attributes:
        implementation: Value passed to transformers' ``attn_implementation``.
        label: What is reported when the chosen kernel runs (``sdpa(flash)`` only for a forced
            flash backend; ``sdpa`` when PyTorch's dispatcher picks).
        reason: One line on why it was chosen.
        backend: SDPA backend forced around every forward pass (an ``SDPBackend`` name such
            as ``FLASH_ATTENTION``), or ``None`` for SDPA's own dispatch.
        tune: Measure the SDPA backends on the loaded model and keep the fastest
            (``attn="auto"`` on CUDA; see :func:`fastest_sdpa_backend`).
    """

    implementation: str
    label: str
    reason: str
    backend: str | None = None
    tune: bool = False


def flash_attn_available(device: str) -> bool:
    """CUDA device and the ``flash_attn`` package importable (found without importing it)."""
    if not is_cuda(device):
        return False
    try:
        return importlib.util.find_spec("flash_attn") is not None
    except (ImportError, ValueError):
        return False


def _sdpa_flash(reason: str) -> AttentionChoice:
    return AttentionChoice("sdpa", SDPA_LABELS["FLASH_ATTENTION"], reason, "FLASH_ATTENTION")


def _auto(device: str, strict: bool) -> AttentionChoice:
    if flash_attn_available(device):
        return AttentionChoice("flash_attention_2", "flash_attention_2", "CUDA + flash_attn found")
    if is_cuda(device):
        return AttentionChoice(
            "sdpa", "sdpa", "auto: fastest SDPA backend, measured after loading", tune=True
        )
    return AttentionChoice("sdpa", "sdpa", "auto: no CUDA (SDPA's CPU dispatch)")


def _flash(device: str, strict: bool) -> AttentionChoice:
    if flash_attn_available(device):
        return AttentionChoice("flash_attention_2", "flash_attention_2", "requested")
    if is_cuda(device):
        return _sdpa_flash("requested; flash_attn not installed: FA2 through SDPA, forced")
    why = "no CUDA device"
    if strict:
        raise ConfigError(
            f"attn='flash_attention_2' was requested with strict=True but {why}; run on a CUDA "
            "machine (the flash_attn package is optional there) or use attn='auto'/'sdpa'"
        )
    msg = f"flash_attention_2 requested but {why}; falling back to sdpa"
    warnings.warn(msg, RuntimeWarning, stacklevel=4)
    logger.warning(msg)
    return AttentionChoice("sdpa", "sdpa", f"fallback: {why}")


def _plain(name: str) -> Callable[[str, bool], AttentionChoice]:
    def resolve(device: str, strict: bool) -> AttentionChoice:
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
    """Pick the attention implementation for ``device`` (before the model is loaded).

    Raises:
        ConfigError: unknown ``attn``, or flash-attn requested with ``strict`` on a CPU.
    """
    resolver = ATTENTION_RESOLVERS.get(attn)
    if resolver is None:
        raise ConfigError(f"unknown attn {attn!r}; choose one of {sorted(ATTENTION_RESOLVERS)}")
    choice = resolver(device, strict)
    logger.info("reader attention: %s (%s)", choice.label, choice.reason)
    return choice


def sdpa_context(backend: str | None) -> contextlib.AbstractContextManager[Any]:
    """``sdpa_kernel([SDPBackend.<backend>])``, or a no-op for SDPA's own dispatch."""
    if backend is None:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([getattr(SDPBackend, backend)])


def is_no_kernel_error(exc: BaseException) -> bool:
    """Whether ``exc`` is PyTorch saying no allowed SDPA backend can run the call."""
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _NO_KERNEL)


class AttentionRuntime:
    """Runs forward passes under an :class:`AttentionChoice` and returns which kernel ran.

    Why a runtime and not just a load-time flag: whether a forced kernel can run depends on the
    call (an explicit padding mask, the dtype), so the kernel is decided per call and each
    answer carries the label of the kernel that produced it.

    Args:
        choice: The resolved choice.
        strict: Raise :class:`ConfigError` when the forced kernel cannot run a call, instead of
            running it under SDPA's dispatch (reported as ``sdpa``) with a one-time warning.
        cuda: Whether the model is on CUDA (flash never takes an explicit mask there).
    """

    def __init__(self, choice: AttentionChoice, *, strict: bool = False, cuda: bool = False):
        self.choice = choice
        self.strict = strict
        self.cuda = cuda
        self._warned = False
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        """The label reported when the chosen kernel runs."""
        return self.choice.label

    def _forced_cannot_run(self, padded: bool) -> str | None:
        # CUDA flash attention takes no attention mask: a left-padded batch needs one.
        if self.cuda and padded and self.choice.backend == "FLASH_ATTENTION":
            return "the batch is padded (explicit mask)"
        return None

    def _fallback(self, why: str) -> None:
        msg = (
            f"attention kernel {self.choice.label} cannot run this call ({why}); "
            "running it under SDPA's dispatch and reporting 'sdpa'"
        )
        if self.strict:
            raise ConfigError(msg.split(";")[0] + " and strict=True")
        with self._lock:
            first, self._warned = not self._warned, True
        if first:
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            logger.warning(msg)

    def run(self, fn: Callable[[], T], *, padded: bool = False) -> tuple[T, str]:
        """``fn()`` under the chosen kernel; returns ``(result, label of the kernel that ran)``.

        ``fn`` must be restartable (build its own cache): when the forced backend raises that
        it cannot run, ``fn`` runs again from scratch under SDPA's dispatch.

        Raises:
            ConfigError: the forced kernel cannot run the call and ``strict`` is set.
        """
        backend = self.choice.backend
        if backend is None:
            return fn(), self.choice.label
        why = self._forced_cannot_run(padded)
        if why is None:
            try:
                with sdpa_context(backend):
                    return fn(), self.choice.label
            except RuntimeError as exc:
                if not is_no_kernel_error(exc):
                    raise
                why = str(exc).splitlines()[0]
        self._fallback(why)
        return fn(), "sdpa"


def _time_prefill(model: Any, backend: str | None, ids: Any, repeats: int) -> float | None:
    """Median ms of a prefill of ``ids`` under ``backend`` (``None`` if it cannot run)."""
    import torch

    dev = ids.device

    def once() -> None:
        with torch.inference_mode(), sdpa_context(backend):
            model(input_ids=ids, use_cache=False, logits_to_keep=1)

    try:
        once()  # warm-up: kernel selection, allocator growth
    except RuntimeError as exc:
        if is_no_kernel_error(exc):
            return None
        raise
    times = []
    for _ in range(repeats):
        if dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.current_stream(dev).synchronize()
            start.record()
            once()
            end.record()
            end.synchronize()
            times.append(float(start.elapsed_time(end)))
        else:
            t = time.perf_counter()
            once()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


#: Backends :func:`fastest_sdpa_backend` measures (``None``: SDPA's own dispatch).
TUNE_BACKENDS: tuple[str | None, ...] = (
    "FLASH_ATTENTION",
    "CUDNN_ATTENTION",
    "EFFICIENT_ATTENTION",
    None,
)


def fastest_sdpa_backend(
    model: Any,
    choice: AttentionChoice,
    *,
    tokens: int = 1024,
    repeats: int = 3,
    backends: tuple[str | None, ...] = TUNE_BACKENDS,
) -> tuple[AttentionChoice, dict[str, float | None]]:
    """Time a prefill of ``tokens`` random tokens under each SDPA backend; keep the fastest.

    SDPA's own dispatch is kept only when it beats every forced backend by more than 5%: a
    forced backend's label is proven by the call returning, the dispatcher's is not.

    Returns:
        ``(choice with the winning backend and label, {label: median ms or None})``.
    """
    import torch

    device = next(model.parameters()).device
    n = min(tokens, int(getattr(model.config, "max_position_embeddings", tokens)))
    gen = torch.Generator(device="cpu").manual_seed(0)
    vocab = int(getattr(model.config, "vocab_size", 1000))
    ids = torch.randint(0, vocab, (1, n), generator=gen).to(device)
    timings: dict[str, float | None] = {}
    for backend in backends:
        label = SDPA_LABELS[backend] if backend else "sdpa"
        timings[label] = _time_prefill(model, backend, ids, repeats)
    forced = {b: timings[SDPA_LABELS[b]] for b in backends if b is not None}
    ok = {b: t for b, t in forced.items() if t is not None}
    dispatch = timings.get("sdpa")
    if not ok or (dispatch is not None and dispatch < 0.95 * min(ok.values())):
        best = replace(choice, label="sdpa", backend=None, tune=False)
    else:
        win = min(ok, key=lambda b: ok[b])
        best = replace(choice, label=SDPA_LABELS[win], backend=win, tune=False)
    summary = ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f} ms'}" for k, v in timings.items())
    best = replace(best, reason=f"auto: fastest of {summary} ({n}-token prefill)")
    logger.info("reader attention tuned: %s", best.reason)
    return best, timings
