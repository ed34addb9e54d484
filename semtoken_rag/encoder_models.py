"""Which transformer the encoder runs, and what identifies its weights.

A model comes by name (id or path; the packaged MiniLM's aliases resolve to its files) or already
loaded by the application (``SentenceTransformer``, LangChain/LlamaIndex embeddings, transformers
model), used in place (only its tokenizer is copied, see :func:`load_loaded`).  The store key
names *what the weights are* (:func:`weights_digest`): replaced files never hit old fingerprints.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from semtoken_rag import models
from semtoken_rag.errors import ConfigError
from semtoken_rag.fork_threads import ForkSafeLock

logger = logging.getLogger(__name__)


@dataclass
class LoadedEncoder:
    """A transformer ready to run: model, fast tokenizer, a stable id and where it runs."""

    model: Any
    tokenizer: Any
    model_id: str
    device: str
    torch_dtype: Any


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} was requested but CUDA is not available")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    return device


def _pick_dtype(dtype: str, device: str) -> Any:
    import torch

    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return table[dtype]


def load_by_name(name: str, device: str, dtype: str) -> LoadedEncoder:
    """Load an encoder from an id or path (the packaged MiniLM for its aliases)."""
    from transformers import AutoModel, AutoTokenizer

    path, model_id = models.resolve_encoder(name)
    model_id = models.canonical_encoder_id(model_id)
    dev = _pick_device(device)
    torch_dtype = _pick_dtype(dtype, dev)
    # bf16 is cast after the digest: its rounding is coarser than fp16's and would change the key.
    bf16 = str(torch_dtype) == "torch.bfloat16"
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **models.local_only(path))
        model = AutoModel.from_pretrained(
            path, dtype="float32" if bf16 else torch_dtype, **models.local_only(path)
        )
    except (OSError, ValueError) as exc:
        raise models.missing_model_error(name, exc) from exc
    models.check_vocabulary(tokenizer, name)
    if bf16:
        weights_digest(model)  # memoised for this model object, which .to() keeps
    model.to(dev, dtype=torch_dtype).eval()
    return LoadedEncoder(model, tokenizer, model_id, dev, torch_dtype)


def _from_sentence_transformer(obj: Any) -> tuple[Any, Any, str] | None:
    first = obj[0] if hasattr(obj, "__getitem__") and len(obj) else None
    model = getattr(first, "auto_model", None)
    tokenizer = getattr(obj, "tokenizer", None) or getattr(first, "tokenizer", None)
    if model is None or tokenizer is None:
        return None
    return model, tokenizer, _name_of(model)


def _from_hf_model(obj: Any) -> tuple[Any, Any, str] | None:
    if not (hasattr(obj, "config") and hasattr(obj, "forward")):
        return None
    from transformers import AutoTokenizer

    name = _name_of(obj)
    path, _ = models.resolve_encoder(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **models.local_only(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot find the tokenizer of the given {type(obj).__name__} ({name!r}): {exc}; "
            "pass a SentenceTransformer, or the model id/path instead"
        ) from exc
    return obj, models.check_vocabulary(tokenizer, name), name


#: Loaded-model kinds by class name, tried in order (the framework ones wrap a SentenceTransformer).
LOADED_KINDS: dict[str, Callable[[Any], tuple[Any, Any, str] | None]] = {
    "SentenceTransformer": _from_sentence_transformer,
    "HuggingFaceEmbeddings": lambda obj: _from_sentence_transformer(getattr(obj, "_client", None)),
    "HuggingFaceEmbedding": lambda obj: _from_sentence_transformer(getattr(obj, "_model", None)),
}


def _name_of(model: Any) -> str:
    cfg = getattr(model, "config", None)
    name = str(getattr(cfg, "_name_or_path", "") or getattr(model, "name_or_path", "") or "")
    return models.canonical_encoder_id(name) or type(model).__name__


def load_loaded(obj: Any) -> LoadedEncoder:
    """Adopt a model the application already loaded (see the module docstring).

    Raises:
        ConfigError: not a supported transformer encoder, or without a fast tokenizer.
    """
    # The kind its class names first, then every kind in order, then a bare transformers model.
    named = LOADED_KINDS.get(type(obj).__name__)
    kinds = [*([named] if named else []), *LOADED_KINDS.values(), _from_hf_model]
    found = next((f for f in (kind(obj) for kind in kinds) if f is not None), None)
    if found is None:
        raise ConfigError(
            f"cannot read token states from a {type(obj).__name__}: pass a SentenceTransformer, "
            "LangChain HuggingFaceEmbeddings, LlamaIndex HuggingFaceEmbedding or a transformers "
            "encoder model"
        )
    model, tokenizer, model_id = found
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"the encoder {model_id!r} has no fast tokenizer (offsets are required)")
    param = next(model.parameters())
    # Copied (a few MB): the truncation the application's calls set could cut the engine's text.
    tokenizer = copy.deepcopy(tokenizer)
    return LoadedEncoder(model, tokenizer, model_id, str(param.device), param.dtype)


_DIGESTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_DIGEST_LOCK = ForkSafeLock()


def weights_digest(model: Any) -> str:
    """Hex digest of a model's weights (names, shapes, values as fp16); memoised per model."""
    with _DIGEST_LOCK:
        hit = _DIGESTS.get(model)
        if hit is not None:
            return hit
        import torch

        h = hashlib.sha256()
        with torch.no_grad():
            for name, tensor in sorted(model.state_dict().items()):
                h.update(f"{name}:{tuple(tensor.shape)}:".encode())
                fp16 = torch.float16 if tensor.is_floating_point() else None
                t = tensor.detach().to(device="cpu", dtype=fp16)
                h.update(t.contiguous().numpy().tobytes())
        digest = h.hexdigest()
        with contextlib.suppress(TypeError):  # not weak-referenceable: just not memoised
            _DIGESTS[model] = digest
        return digest
