"""The selection knobs: what the core's stages do with the fingerprints (one source of defaults).

The part of :class:`~semtoken_rag.config.SemTokenConfig` the pure core reads; each knob is one
annotated field (CONTRIBUTING.md, "Adding a selection knob").
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from semtoken_rag.config_base import ConfigPart, Flag, Integer, Number
from semtoken_rag.errors import ConfigError

Unit = Literal["sentence", "word"]
NoQueryMode = Literal["centroid", "entropy"]
DedupBackend = Literal["auto", "numpy", "faiss"]
Relevance = Literal["late_interaction", "pooled"]
Objective = Literal["relevance", "summary", "coverage", "auto"]


class SelectionConfig(ConfigPart):
    """How units are formed, scored and chosen (frozen, validated, hashable)."""

    unit: Unit = Field(
        default="sentence",
        description="What is kept or dropped: 'sentence' (default, measured best) or 'word' "
        "(the paper read literally; kept for ablations).",
    )
    max_unit_words: Integer = Field(
        default=48,
        ge=1,
        description="Longer sentences are split at clause punctuation or hard-wrapped, so one "
        "unit never dominates the budget.",
    )
    similarity_threshold: Number = Field(
        default=0.7,
        ge=-1.0,
        le=1.0,
        description="tau: adjacent units whose fingerprint cosine with the first unit of the "
        "current span exceeds it merge into that span.",
    )
    entropy_threshold: Number = Field(
        default=0.0,
        ge=0.0,
        description="delta: a merged span whose semantic entropy is below delta times the "
        "median span entropy is coarse and collapses to its most representative unit.  Default "
        "0 (no collapse): measured, collapsing never helped by 2 SE on any set "
        "(docs/results.md); the seed's 0.5 and the presets' 0.4/0.6 remain available.",
    )
    min_cluster_size: Integer = Field(
        default=2, ge=1, description="Smallest merged span that may be collapsed to one unit."
    )
    max_cluster_size: Integer = Field(
        default=10, ge=1, description="Largest number of units merged into one span."
    )
    relevance: Relevance = Field(
        default="late_interaction",
        description="How relevance to the query is measured: 'late_interaction' (each content "
        "word of the query matched to its most similar word of the unit, the best "
        "query_top_words matches averaged, so a sentence answering part of a multi-hop question "
        "is not averaged away) or 'pooled' (cosine of pooled vectors; the paper, kept for "
        "ablations).",
    )
    query_top_words: Integer = Field(
        default=5,
        ge=1,
        description="Query words whose best matches are averaged in late interaction.",
    )
    relevance_weight: Number = Field(
        default=1.0,
        ge=0.0,
        description="Weight of the standardised query relevance in the unit score.",
    )
    entropy_weight: Number = Field(
        default=0.0,
        ge=0.0,
        description="Weight of the standardised span entropy in the unit score.  Default 0: "
        "measured, the entropy term never helped by 2 SE and hurt on NarrativeQA and gov_report "
        "(docs/results.md); the seed's 0.1 remains available.",
    )
    dedup_threshold: Number | None = Field(
        default=0.92,
        ge=-1.0,
        le=1.0,
        description="A unit whose fingerprint cosine with an already kept unit (any chunk) "
        "exceeds this is skipped as a near-duplicate; None disables the skip.",
    )
    lexical_dedup_threshold: Number | None = Field(
        default=0.8,
        gt=0.0,
        le=1.0,
        description="A unit whose word 3-grams are at least this fraction in already kept text "
        "is skipped (verbatim repeats, e.g. overlapping chunks); None disables the check.  Not "
        "applied to unit='word' (a repeated word is not repeated text).",
    )
    dedup_backend: DedupBackend = Field(
        default="auto",
        description="Near-duplicate search: exact numpy products, a FAISS range search, or numpy "
        "for small contexts and FAISS above a few thousand units when installed ('auto').",
    )
    no_query_mode: NoQueryMode = Field(
        default="centroid",
        description="Relevance target without a query: the context centroid, or entropy alone "
        "(the paper's top-H selection).",
    )
    objective: Objective = Field(
        default="auto",
        description="What the budget buys: 'relevance' (units ranked by query relevance and "
        "entropy), 'summary' (the same plus a lead prior: earlier units of each chunk first, for "
        "requests a question cannot steer), 'coverage' (many distinct topics, few repeats: "
        "budgeted facility location over unit fingerprints; measured worse, kept for "
        "comparison), or 'auto' (summary when there is no query or the query asks for a "
        "summary, relevance otherwise).",
    )
    lead_weight: Number = Field(
        default=1.0,
        ge=0.0,
        description="Summary objective: weight of the standardised lead prior (how early the "
        "unit sits in its chunk) added to the unit score.",
    )
    coverage_neighbours: Integer = Field(
        default=32,
        ge=1,
        description="Coverage: how many most similar units each unit can be covered by "
        "(sparsity of the similarity graph; memory is units x this).",
    )
    coverage_relevance: Number = Field(
        default=0.5,
        ge=0.0,
        description="Coverage: how strongly a unit's relevance to the query raises its weight "
        "(exp(coverage_relevance * z(relevance))); 0 ignores the query.",
    )
    fill_partial: Flag = Field(
        default=True,
        description="Spend a leftover budget on the leading whole words of the best unit that "
        "did not fit.",
    )
    min_fill_tokens: Integer = Field(
        default=6, ge=1, description="Smallest leftover worth a partial unit."
    )

    @model_validator(mode="after")
    def _cluster_sizes(self) -> SelectionConfig:
        if self.min_cluster_size > self.max_cluster_size:
            raise ConfigError(
                f"min_cluster_size ({self.min_cluster_size}) must be <= max_cluster_size "
                f"({self.max_cluster_size})"
            )
        return self
