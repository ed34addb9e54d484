"""The pure numeric core: arrays in, arrays out; no models, no I/O, no framework imports.

Stages (each importable and testable alone):

- :mod:`~semtoken_rag.core.segment`   text -> word and unit (sentence) boundaries
- :mod:`~semtoken_rag.core.pooling`   segment means (tokens -> words -> units)
- :mod:`~semtoken_rag.core.spans`     greedy anchored merge of adjacent similar units
- :mod:`~semtoken_rag.core.entropy`   semantic entropy Tr Cov of every span at once
- :mod:`~semtoken_rag.core.scoring`   query relevance, combined score, granularity
- :mod:`~semtoken_rag.core.forcekeep` regex rules whose matches are never dropped
- :mod:`~semtoken_rag.core.budget`    budgeted selection with near-duplicate skip
- :mod:`~semtoken_rag.core.render`    kept word ranges -> text + character offsets
- :mod:`~semtoken_rag.core.pipeline`  the stages chained for one context
"""
