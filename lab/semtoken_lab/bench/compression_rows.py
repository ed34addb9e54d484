"""The compression benchmark's results: one row per workload size, one per baseline run.

Apart from :mod:`semtoken_lab.bench.compression` (which measures them) so that the report, the
targets and the markdown read the figures without importing the measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CompressionRow:
    """Timings of one workload size (ms are medians over the whole workload)."""

    target_tokens: int
    tokens: int
    chunks: int
    words: int
    units: int
    windows: int
    repeats: int
    core_ms: float
    stages_ms: dict[str, float]
    warm_repeat_query_ms: float
    warm_fresh_query_ms: float
    warm_store_only_ms: float
    warm_stage_ms: dict[str, float]
    cold_ms: float
    raw_forward_ms: float
    core_peak_bytes: int
    warm_peak_bytes: int
    rss_high_water_bytes: int
    device: str = "cpu"
    gpu_peak_bytes: int = 0  # PyTorch allocator peak on the GPU over the cold runs (0 on CPU)

    @property
    def per_1k(self) -> float:
        return 1000.0 / max(self.tokens, 1)

    def summary(self) -> dict[str, float]:
        """The headline figures in ms per 1k tokens (and the cold/raw ratio)."""
        k = self.per_1k
        return {
            "core_ms_per_1k": self.core_ms * k,
            "warm_repeat_query_ms_per_1k": self.warm_repeat_query_ms * k,
            "warm_fresh_query_ms_per_1k": self.warm_fresh_query_ms * k,
            "warm_store_only_ms_per_1k": self.warm_store_only_ms * k,
            "cold_ms_per_1k": self.cold_ms * k,
            "raw_forward_ms_per_1k": self.raw_forward_ms * k,
            "cold_over_raw": self.cold_ms / self.raw_forward_ms if self.raw_forward_ms else 0.0,
        }


@dataclass(frozen=True)
class BaselineRow:
    """One baseline on one workload, with its cost relative to ours."""

    method: str
    target_tokens: int
    tokens: int
    repeats: int
    ms: float
    achieved_ratio: float
    over_cold: float
    over_warm_repeat: float
    over_warm_fresh: float
    note: str = ""

    @property
    def ms_per_1k(self) -> float:
        return self.ms * 1000.0 / max(self.tokens, 1)


@dataclass
class CompressionReport:
    """All rows of the compression benchmark and the fitted scaling exponents."""

    rows: list[CompressionRow] = field(default_factory=list)
    baselines: list[BaselineRow] = field(default_factory=list)
    exponents: dict[str, float | None] = field(default_factory=dict)
