"""The engine's configuration: three frozen pydantic parts, composed, each knob declared once.

:class:`EncoderConfig`, :class:`~semtoken_rag.core.params.SelectionConfig` (the only part the
core reads) and :class:`BudgetConfig`, composed by :class:`SemTokenConfig`; seed-README flat names
route through :data:`FLAT`.  Every invalid value raises :class:`~semtoken_rag.errors.ConfigError`
naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic.fields import FieldInfo

from semtoken_rag.config_base import ConfigPart, Flag
from semtoken_rag.config_parts import (
    DEFAULT_ENCODER,
    BudgetConfig,
    BudgetScope,
    Device,
    DType,
    EncoderConfig,
    EncoderModel,
    ForceKeepPresets,
    Ratio,
    Share,
)
from semtoken_rag.core.forcekeep import ForceKeepPreset
from semtoken_rag.core.params import DedupBackend, NoQueryMode, Relevance, SelectionConfig, Unit
from semtoken_rag.errors import ConfigError

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
    "Ratio",
    "Relevance",
    "SelectionConfig",
    "SemTokenConfig",
    "Share",
    "Unit",
    "config_field",
]


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


class SemTokenConfig(ConfigPart):
    """Frozen configuration of a :class:`~semtoken_rag.Compressor`: three parts plus the store
    switch.

    Built from parts, flat keyword arguments (the seed README's names, overriding the parts),
    or both::

        SemTokenConfig(compression_ratio=0.4, similarity_threshold=0.8)
        SemTokenConfig(encoder=EncoderConfig(device="cpu"), budget=BudgetConfig(budget_tokens=900))

    Read a knob through its part (``config.budget.count_tokenizer``; :data:`FLAT` maps names)."""

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
        encoder: EncoderConfig | Mapping[str, Any] | None = None,
        selection: SelectionConfig | Mapping[str, Any] | None = None,
        budget: BudgetConfig | Mapping[str, Any] | None = None,
        cache_embeddings: Any = True,
        **flat: Any,
    ) -> None:
        unknown = sorted(set(flat) - set(FLAT))
        if unknown:
            raise ConfigError(
                f"unknown configuration field(s) {unknown}; valid: {sorted(self.flat_names())}"
            )
        given = {"encoder": encoder, "selection": selection, "budget": budget}
        parts: dict[str, ConfigPart] = {}
        for name, cls in PARTS.items():
            part = type(self).model_fields[name].default if given[name] is None else given[name]
            if isinstance(part, Mapping):  # model_dump()'s form: model_validate round-trips
                bad = [k for k in part if not isinstance(k, str)]
                if bad:
                    raise ConfigError(f"{name} keys must be field names (str), got {bad[0]!r:.40}")
                part = cls(**part)
            if not isinstance(part, cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(part)}")
            changes = {FLAT[k][1]: v for k, v in flat.items() if FLAT[k][0] == name}
            parts[name] = part.replace(**changes) if changes else part
        super().__init__(**parts, cache_embeddings=cache_embeddings)

    if not TYPE_CHECKING:
        # Backward compatibility: the flat read view (``config.unit``); hidden from type
        # checkers so typed code reads the parts and a misspelt name is an error there.

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

    def to_dict(self) -> dict[str, Any]:
        """Flat plain-data view (JSON-serialisable except a loaded model object)."""
        out = {flat: getattr(getattr(self, part), field) for flat, (part, field) in FLAT.items()}
        out.update((name, getattr(self, name)) for name in self.flat_names() if name not in out)
        return out

    def diff(self, other: SemTokenConfig | None = None) -> dict[str, Any]:
        """Flat fields whose value differs from ``other`` (default: the defaults)."""
        if other is not None and not isinstance(other, SemTokenConfig):
            raise ConfigError(f"diff compares with a SemTokenConfig, got {type(other).__name__}")
        base = (other or SemTokenConfig()).to_dict()
        return {k: v for k, v in self.to_dict().items() if v != base[k]}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SemTokenConfig:
        """Build a named preset (``default``, ``conservative``, ``aggressive``)."""
        try:
            base = PRESETS[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name such as a list
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
