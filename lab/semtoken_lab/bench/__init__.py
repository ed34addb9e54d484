"""Benchmarks: what compression costs against the LLM work it saves (``semtoken-rag bench``).

Modules: :mod:`timing` (warm-up + medians, peak memory, scaling fit, machine facts),
:mod:`cases` (workloads built from the shared evaluation data), :mod:`compression` (core,
warm, cold, raw encoder forward and the baselines; rows in :mod:`compression_rows`),
:mod:`store` (fingerprint store throughput; the codecs' training corpus in
:mod:`codec_training`), :mod:`endtoend` (local reader TTFT full vs compressed), :mod:`result`
(what a run measured), :mod:`targets` (the goals, measured) and :mod:`report` (JSON, PNG; the
markdown in :mod:`report_markdown`).

Not imported by ``import semtoken_rag``; every heavy dependency is imported where it is used.
"""

from __future__ import annotations
