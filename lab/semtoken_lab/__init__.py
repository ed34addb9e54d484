"""semtoken-rag-lab: the reader, evaluation harness, benchmarks and plots of semtoken-rag.

Kept out of the engine's distribution: a RAG application needs none of it.  Everything here
builds on the engine's public API (:mod:`semtoken_rag`), never the other way round.
"""

__version__ = "0.1.0"
