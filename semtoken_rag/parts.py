"""Building the engine's heavy parts from its config: the encoder and the counting tokenizer.

Both load under :data:`semtoken_rag.models.LOAD_LOCK` (a server's first requests arrive
together); imported lazily, so ``import semtoken_rag`` loads no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from semtoken_rag import models
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.inputs import check_part
from semtoken_rag.protocols import Counter, FingerprintEncoder


def load_encoder(config: SemTokenConfig) -> FingerprintEncoder:
    """The encoder ``config`` describes."""
    from semtoken_rag.encoder import TransformerEncoder

    with models.LOAD_LOCK:
        return TransformerEncoder.from_config(config)


def load_counter(config: SemTokenConfig, encoder: Callable[[], FingerprintEncoder]) -> Counter:
    """The counter of ``config.budget.count_tokenizer``, else the tokenizer of ``encoder()``
    (called only then, so a named counting tokenizer loads no encoder model).

    Raises:
        InvalidInputError: no count tokenizer is configured and the encoder has none.
    """
    from semtoken_rag.tokens import TokenCounter, load_counter

    if config.budget.count_tokenizer is not None:
        with models.LOAD_LOCK:
            return load_counter(config.budget.count_tokenizer)
    model = encoder()
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise InvalidInputError(
            "the encoder has no tokenizer: pass counter= or config.count_tokenizer"
        )
    return TokenCounter(tok, name=getattr(model, "model_id", None))


def check_engine_parts(config: Any, encoder: Any, store: Any, counter: Any) -> SemTokenConfig:
    """The engine's constructor arguments checked, before anything loads.

    Raises:
        InvalidInputError: a config that is not a ``SemTokenConfig``.
        ConfigError: a part without the methods the engine calls.
        ModelNotFoundError: a model name that cannot load here.
    """
    if not isinstance(config, SemTokenConfig):
        raise InvalidInputError(f"config must be a SemTokenConfig, got {type(config).__name__}")
    check_part(encoder, "encoder", ("encode_texts", "encode_queries"))
    check_part(store, "store", ("lookup", "put"))
    check_part(counter, "counter", ("count", "word_costs"))
    if encoder is None and isinstance(config.encoder.model, str):
        models.check_model_name(config.encoder.model, models.ENCODER_ALIASES, "encoder_model")
    tokenizer = config.budget.count_tokenizer
    if counter is None and tokenizer is not None:
        # Either packaged model counts tokens (tokens.load_counter resolves both).
        aliases = models.READER_ALIASES | models.ENCODER_ALIASES
        models.check_model_name(tokenizer, aliases, "count_tokenizer")
    return config


def check_plan_args(prepared: Any, on_stage: Any) -> None:
    """``Compressor.plan``'s arguments: a prepared context and an optional callable.

    Raises:
        InvalidInputError: naming what was given instead.
    """
    from semtoken_rag.prepared import PreparedContext

    if not isinstance(prepared, PreparedContext):
        raise InvalidInputError(
            f"plan() takes the PreparedContext of prepare(), got {type(prepared).__name__}"
        )
    if on_stage is not None and not callable(on_stage):
        raise InvalidInputError(f"on_stage must be callable, got {type(on_stage).__name__}")
