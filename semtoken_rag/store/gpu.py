"""FAISS on the GPU: which build is active, per-device resources, bounded-k search.

Why a module of its own:

* **Which FAISS is this?**  ``faiss-cpu`` and ``faiss-gpu-cu12`` both install the module
  ``faiss``; whichever was installed last wins, and a GPU build whose CUDA runtime does not
  load reports zero GPUs.  :func:`faiss_build` says which build is active (logged once), and
  ``use_gpu="always"`` fails with that description instead of silently running on the CPU.
* **Resources are per device and not thread-safe.**  FAISS documents
  ``StandardGpuResources`` as usable by one thread at a time; :func:`gpu_resources` keeps one
  per device with a lock that every GPU call here holds.
* **GPU k-selection is bounded** (``k <= 2048`` for flat search in FAISS's CUDA kernels):
  :func:`knn_inner_product` and :class:`GpuFlatIndex` answer larger ``k`` on the CPU and say so
  in the log.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from semtoken_rag import optional
from semtoken_rag.errors import StoreError

logger = logging.getLogger(__name__)

#: Largest ``k`` FAISS's GPU flat search selects (``GPU_MAX_SELECTION_K`` in faiss/gpu).
GPU_MAX_K = 2048
USE_GPU_CHOICES = ("auto", "never", "always")


@dataclass(frozen=True)
class FaissBuild:
    """The FAISS build this process imported.

    Attributes:
        version: ``faiss.__version__``.
        gpu_compiled: The module has GPU classes (a faiss-gpu build).
        num_gpus: CUDA devices FAISS sees (0 on a CPU build or when CUDA does not load).
        compile_options: ``faiss.get_compile_options()``.
        module_file: Where the module was imported from (tells faiss-cpu from faiss-gpu).
        error: Why GPUs could not be counted, if they could not.
    """

    version: str
    gpu_compiled: bool
    num_gpus: int
    compile_options: str
    module_file: str
    error: str = ""

    @property
    def gpu_usable(self) -> bool:
        return self.gpu_compiled and self.num_gpus > 0

    def describe(self) -> str:
        """One line for logs and error messages."""
        kind = "GPU build" if self.gpu_compiled else "CPU-only build"
        gpus = f"{self.num_gpus} GPU(s) visible" if self.gpu_compiled else "no GPU support"
        extra = f"; CUDA error: {self.error}" if self.error else ""
        return f"faiss {self.version} ({kind}, {gpus}{extra}) from {self.module_file}"


@functools.lru_cache(maxsize=1)
def faiss_build() -> FaissBuild:
    """Describe the active FAISS build (cached; logged once at INFO)."""
    faiss = optional.faiss("FAISS")
    compiled = hasattr(faiss, "StandardGpuResources")
    num, error = 0, ""
    if compiled:
        try:
            num = int(faiss.get_num_gpus())
        except Exception as exc:  # a broken CUDA runtime must not break the CPU path
            error = f"{type(exc).__name__}: {exc}"
    try:
        options = str(faiss.get_compile_options())
    except AttributeError:
        options = ""
    build = FaissBuild(
        version=str(getattr(faiss, "__version__", "?")),
        gpu_compiled=compiled,
        num_gpus=num,
        compile_options=options,
        module_file=str(getattr(faiss, "__file__", "?")),
        error=error,
    )
    logger.info("active FAISS: %s", build.describe())
    return build


def resolve_use_gpu(use_gpu: str) -> bool:
    """Whether to search on a GPU for a ``use_gpu`` setting.

    Raises:
        StoreError: an unknown setting, or ``always`` without a usable GPU build (the message
            says which FAISS is active and how to install the GPU one).
    """
    if use_gpu not in USE_GPU_CHOICES:
        raise StoreError(f"use_gpu must be one of {USE_GPU_CHOICES}, got {use_gpu!r}")
    if use_gpu == "never":
        return False
    build = faiss_build()
    if build.gpu_usable:
        return True
    if use_gpu == "always":
        raise StoreError(
            f"use_gpu='always' but {build.describe()}. Install a FAISS GPU build that matches "
            "the CUDA runtime (e.g. `pip uninstall faiss-cpu && pip install faiss-gpu-cu12` "
            "for CUDA 12; faiss-cpu and faiss-gpu install the same `faiss` module, so only one "
            "may be installed), or use use_gpu='auto'"
        )
    return False


def check_use_gpu(use_gpu: str) -> str:
    """Validate a ``use_gpu`` setting when a store opens: ``always`` fails now, naming the FAISS
    build; ``auto`` is resolved on first search (no FAISS import before one is needed).

    Raises:
        StoreError: as :func:`resolve_use_gpu`.
    """
    if use_gpu not in USE_GPU_CHOICES or use_gpu == "always":
        resolve_use_gpu(use_gpu)
    return use_gpu


class _Device:
    def __init__(self, resources: Any) -> None:
        self.resources = resources
        self.lock = threading.Lock()


_DEVICES: dict[int, _Device] = {}
_DEVICES_LOCK = threading.Lock()


def gpu_resources(device: int = 0) -> tuple[Any, threading.Lock]:
    """The process's ``StandardGpuResources`` of ``device`` and the lock guarding its use.

    Created once per device (thread-safe); hold the lock for every call that uses them.
    """
    with _DEVICES_LOCK:
        dev = _DEVICES.get(device)
        if dev is None:
            faiss = optional.faiss("FAISS on the GPU")
            dev = _DEVICES[device] = _Device(faiss.StandardGpuResources())
            logger.info("FAISS GPU resources created for device %d", device)
        return dev.resources, dev.lock


def knn_inner_product(
    queries: np.ndarray, base: np.ndarray, k: int, *, on_gpu: bool, device: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner products of each query among ``base`` rows (no index kept).

    GPU (``faiss.knn_gpu``) when ``on_gpu`` and ``k <= GPU_MAX_K``, else CPU (``faiss.knn``).

    Returns:
        ``(scores (q, k) float32, ids (q, k) int64)``; ``-1`` ids where ``base`` is shorter.
    """
    faiss = optional.faiss("FAISS search")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    b = np.ascontiguousarray(base, dtype=np.float32)
    if on_gpu and k > GPU_MAX_K:
        logger.debug("k=%d exceeds the GPU limit %d: searching on the CPU", k, GPU_MAX_K)
    if on_gpu and k <= GPU_MAX_K:
        res, lock = gpu_resources(device)
        with lock:
            scores, ids = faiss.knn_gpu(
                res, q, b, k, metric=faiss.METRIC_INNER_PRODUCT, device=device
            )
    else:
        scores, ids = faiss.knn(q, b, k, metric=faiss.METRIC_INNER_PRODUCT)
    return np.asarray(scores, np.float32), np.asarray(ids, np.int64)


class GpuFlatIndex:
    """An exact inner-product index whose search runs on a GPU copy when asked and possible.

    The CPU ``IndexFlatIP`` is the master.  The GPU copy is made on the first search and then
    receives every later :meth:`add` incrementally (no re-upload of the whole index); searches
    with ``k`` above :data:`GPU_MAX_K` use the CPU master.

    Args:
        dim: Vector dimension.
        use_gpu: ``auto``/``never``/``always`` (see :func:`resolve_use_gpu`).
        device: CUDA device.
    """

    def __init__(self, dim: int, *, use_gpu: str = "never", device: int = 0) -> None:
        faiss = optional.faiss("FAISS search")
        self.dim = dim
        self.device = device
        self.on_gpu = resolve_use_gpu(use_gpu)
        self.cpu = faiss.IndexFlatIP(dim)
        self._gpu: Any = None

    @property
    def ntotal(self) -> int:
        return int(self.cpu.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append ``(n, dim) float32`` rows (to the GPU copy too, once it exists)."""
        x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self.cpu.add(x)
        if self._gpu is not None:
            _, lock = gpu_resources(self.device)
            with lock:
                self._gpu.add(x)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows by inner product: ``(scores (q, k), ids (q, k))``."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if not self.on_gpu or k > GPU_MAX_K:
            if self.on_gpu:
                logger.debug("k=%d exceeds the GPU limit %d: CPU search", k, GPU_MAX_K)
            return self.cpu.search(q, k)  # type: ignore[no-any-return]
        res, lock = gpu_resources(self.device)
        with lock:
            if self._gpu is None:
                faiss = optional.faiss("FAISS on the GPU")
                self._gpu = faiss.index_cpu_to_gpu(res, self.device, self.cpu)
                logger.info("flat index of %d vectors copied to GPU %d", self.ntotal, self.device)
            return self._gpu.search(q, k)  # type: ignore[no-any-return]
