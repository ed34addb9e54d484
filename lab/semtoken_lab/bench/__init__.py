"""Benchmarks: what compression costs against the LLM work it saves (``semtoken-rag bench``).

Modules: :mod:`timing` (warm-up + medians, peak memory, scaling fit, machine facts),
:mod:`cases` (workloads built from the shared evaluation data), :mod:`compression` (core,
warm, cold, raw encoder forward and the baselines), :mod:`store` (fingerprint store throughput),
:mod:`endtoend` (local reader TTFT full vs compressed) and :mod:`report` (JSON, markdown, PNG).

Not imported by ``import semtoken_rag``; every heavy dependency is imported where it is used.
"""

from __future__ import annotations
