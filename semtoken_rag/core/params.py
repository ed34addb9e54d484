"""The selection knobs: what the core's stages do with the fingerprints (one source of defaults).

This is the part of :class:`~semtoken_rag.config.SemTokenConfig` that the pure core reads
(segmentation into units, spans, entropy, relevance, redundancy, the budget's partial fill).
Adding a knob here is all it takes for the flat constructor, the adapters' ``engine_options``
and validation to know it; then use it in the stage that needs it and test it (see
CONTRIBUTING.md, "Adding a selection knob").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from semtoken_rag.knobs import knob, require, validate

Unit = Literal["sentence", "word"]
NoQueryMode = Literal["centroid", "entropy"]
DedupBackend = Literal["auto", "numpy", "faiss"]
Relevance = Literal["late_interaction", "pooled"]
Objective = Literal["relevance", "summary", "coverage", "auto"]


@dataclass(frozen=True)
class SelectionConfig:
    """How units are formed, scored and chosen (frozen, validated, hashable)."""

    unit: Unit = knob(
        "sentence",
        "What is kept or dropped: 'sentence' (default, measured best) or 'word' (the paper "
        "read literally; kept for ablations).",
        "choice",
        choices=("sentence", "word"),
    )
    max_unit_words: int = knob(
        48,
        "Longer sentences are split at clause punctuation or hard-wrapped, so one unit never "
        "dominates the budget.",
        "int",
        lo=1,
    )
    similarity_threshold: float = knob(
        0.7,
        "tau: adjacent units whose fingerprint cosine with the first unit of the current span "
        "exceeds it merge into that span.",
        "float",
        lo=-1.0,
        hi=1.0,
    )
    entropy_threshold: float = knob(
        0.0,
        "delta: a merged span whose semantic entropy is below delta times the median span "
        "entropy is coarse and collapses to its most representative unit.  Default 0 (no "
        "collapse): measured, collapsing never helped by 2 SE on any set (docs/results.md); "
        "the seed's 0.5 and the presets' 0.4/0.6 remain available.",
        "float",
        lo=0.0,
    )
    min_cluster_size: int = knob(
        2, "Smallest merged span that may be collapsed to one unit.", "int", lo=1
    )
    max_cluster_size: int = knob(10, "Largest number of units merged into one span.", "int", lo=1)
    relevance: Relevance = knob(
        "late_interaction",
        "How relevance to the query is measured: 'late_interaction' (each content word of the "
        "query matched to its most similar word of the unit, the best query_top_words matches "
        "averaged, so a sentence answering part of a multi-hop question is not averaged away) or "
        "'pooled' (cosine of pooled vectors; the paper, kept for ablations).",
        "choice",
        choices=("late_interaction", "pooled"),
    )
    query_top_words: int = knob(
        5, "Query words whose best matches are averaged in late interaction.", "int", lo=1
    )
    relevance_weight: float = knob(
        1.0, "Weight of the standardised query relevance in the unit score.", "float", lo=0.0
    )
    entropy_weight: float = knob(
        0.0,
        "Weight of the standardised span entropy in the unit score.  Default 0: measured, the "
        "entropy term never helped by 2 SE and hurt on NarrativeQA and gov_report "
        "(docs/results.md); the seed's 0.1 remains available.",
        "float",
        lo=0.0,
    )
    dedup_threshold: float | None = knob(
        0.92,
        "A unit whose fingerprint cosine with an already kept unit (any chunk) exceeds this is "
        "skipped as a near-duplicate; None disables the skip.",
        "float",
        lo=-1.0,
        hi=1.0,
        optional=True,
    )
    lexical_dedup_threshold: float | None = knob(
        0.8,
        "A unit whose word 3-grams are at least this fraction in already kept text is skipped "
        "(verbatim repeats, e.g. overlapping chunks); None disables the check.",
        "float",
        lo=0.0,
        hi=1.0,
        lo_open=True,
        optional=True,
    )
    dedup_backend: DedupBackend = knob(
        "auto",
        "Near-duplicate search: exact numpy products, a FAISS range search, or numpy for small "
        "contexts and FAISS above a few thousand units when installed ('auto').",
        "choice",
        choices=("auto", "numpy", "faiss"),
    )
    no_query_mode: NoQueryMode = knob(
        "centroid",
        "Relevance target without a query: the context centroid, or entropy alone (the paper's "
        "top-H selection).",
        "choice",
        choices=("centroid", "entropy"),
    )
    objective: Objective = knob(
        "auto",
        "What the budget buys: 'relevance' (units ranked by query relevance and entropy), "
        "'summary' (the same plus a lead prior: earlier units of each chunk first, for "
        "requests a question cannot steer), 'coverage' (many distinct topics, few repeats: "
        "budgeted facility location over unit fingerprints; measured worse, kept for "
        "comparison), or 'auto' (summary when there is no query or the query asks for a "
        "summary, relevance otherwise).",
        "choice",
        choices=("relevance", "summary", "coverage", "auto"),
    )
    lead_weight: float = knob(
        1.0,
        "Summary objective: weight of the standardised lead prior (how early the unit sits in "
        "its chunk) added to the unit score.",
        "float",
        lo=0.0,
    )
    coverage_neighbours: int = knob(
        32,
        "Coverage: how many most similar units each unit can be covered by (sparsity of the "
        "similarity graph; memory is units x this).",
        "int",
        lo=1,
    )
    coverage_relevance: float = knob(
        0.5,
        "Coverage: how strongly a unit's relevance to the query raises its weight "
        "(exp(coverage_relevance * z(relevance))); 0 ignores the query.",
        "float",
        lo=0.0,
    )
    fill_partial: bool = knob(
        True,
        "Spend a leftover budget on the leading whole words of the best unit that did not fit.",
        "bool",
    )
    min_fill_tokens: int = knob(6, "Smallest leftover worth a partial unit.", "int", lo=1)

    def __post_init__(self) -> None:
        validate(self)
        require(
            self.min_cluster_size <= self.max_cluster_size,
            f"min_cluster_size ({self.min_cluster_size}) must be <= max_cluster_size "
            f"({self.max_cluster_size})",
        )
