"""Loading the reader's causal LM (its files and tokenizer are located by the engine).

:mod:`semtoken_rag.readers` finds the packaged SmolLM2 GGUF, converts it once to a bf16 folder
and loads tokenizers; this module adds the model itself.
"""

from __future__ import annotations

from typing import Any

from semtoken_rag.errors import ModelNotFoundError
from semtoken_rag.models import local_only
from semtoken_rag.readers import (
    cache_root,
    convert_gguf,
    converted_dir,
    load_reader_tokenizer,
    resolve_reader,
)

__all__ = [
    "cache_root",
    "convert_gguf",
    "converted_dir",
    "load_reader_model",
    "load_reader_tokenizer",
    "resolve_reader",
]


def load_reader_model(name: str, *, dtype: Any, attn_implementation: str, device: str) -> Any:
    """Load the causal LM (eval mode, on ``device``).

    Raises:
        ModelNotFoundError: the model cannot be found or read.
    """
    from transformers import AutoModelForCausalLM

    path, _ = resolve_reader(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, attn_implementation=attn_implementation, **local_only(path)
        )
    except OSError as exc:
        raise ModelNotFoundError(f"could not load reader model {name!r}: {exc}") from exc
    return model.to(device).eval()  # type: ignore[arg-type]
