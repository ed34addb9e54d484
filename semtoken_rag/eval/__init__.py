"""Evaluation harness: datasets, LongBench metrics, baselines, a resumable runner, reports.

Modules (one concept each): :mod:`~semtoken_rag.eval.data` (examples and loaders),
:mod:`~semtoken_rag.eval.metrics` (LongBench metrics), :mod:`~semtoken_rag.eval.stats` (paired
statistics), :mod:`~semtoken_rag.eval.methods` (method registry),
:mod:`~semtoken_rag.eval.selection` (budgeted unit selection),
:mod:`~semtoken_rag.eval.selective` (Selective Context),
:mod:`~semtoken_rag.eval.lingua` (LongLLMLingua offline), :mod:`~semtoken_rag.eval.rag` (chunk
pool + FAISS), :mod:`~semtoken_rag.eval.records` (JSONL records), :mod:`~semtoken_rag.eval.runner`,
:mod:`~semtoken_rag.eval.report`, :mod:`~semtoken_rag.eval.plots`,
:mod:`~semtoken_rag.eval.density`.

Nothing heavy is imported here: each module imports torch, faiss or matplotlib lazily.
"""

from __future__ import annotations
