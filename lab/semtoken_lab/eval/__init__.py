"""Evaluation harness: datasets, LongBench metrics, baselines, a resumable runner, reports.

Modules (one concept each): :mod:`~semtoken_lab.eval.data` (examples and loaders),
:mod:`~semtoken_lab.eval.metrics` (LongBench metrics), :mod:`~semtoken_lab.eval.stats` (paired
statistics), :mod:`~semtoken_lab.eval.method_env` (the method interface and its resources),
:mod:`~semtoken_lab.eval.methods` (method registry), :mod:`~semtoken_lab.eval.baselines`,
:mod:`~semtoken_lab.eval.semtoken_variants` (SemToken and its ablations),
:mod:`~semtoken_lab.eval.selection` (budgeted unit selection),
:mod:`~semtoken_lab.eval.selective` (Selective Context),
:mod:`~semtoken_lab.eval.lingua` (LongLLMLingua offline), :mod:`~semtoken_lab.eval.rag` (chunk
pool + FAISS), :mod:`~semtoken_lab.eval.records` (JSONL records),
:mod:`~semtoken_lab.eval.run_config` (a run's config and result),
:mod:`~semtoken_lab.eval.reading` (what the reader measures), :mod:`~semtoken_lab.eval.runner`,
:mod:`~semtoken_lab.eval.report`, :mod:`~semtoken_lab.eval.rereport` (reports from records
alone), :mod:`~semtoken_lab.eval.plots`, :mod:`~semtoken_lab.eval.density`.

Nothing heavy is imported here: each module imports torch, faiss or matplotlib lazily.
"""

from __future__ import annotations
