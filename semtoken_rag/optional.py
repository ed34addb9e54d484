"""Optional dependencies: one place that imports them and says how to install what is missing.

A missing extra (FAISS, Ray, GGUF, the lab) gives a one-line error naming the ``pip install``
that fixes it, never a bare ``ModuleNotFoundError`` from deep inside a call.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from semtoken_rag.errors import MissingDependencyError

#: Import name -> install command, run beside a checkout (not on PyPI yet; see the README).
INSTALL_HINTS: dict[str, str] = {
    "faiss": "pip install './semtoken-rag[faiss]'",
    "ray": "pip install './semtoken-rag[ray]'",
    "gguf": "pip install './semtoken-rag[models]'",
    "semtoken_lab": "pip install ./semtoken-rag/lab",
    "matplotlib": "pip install ./semtoken-rag/lab",
    "regex": "pip install regex",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra.

    Args:
        module: Import name (``"faiss"``, ``"ray"``, ...).
        purpose: What needs it, for the message (``"the persistent fingerprint store"``).

    Raises:
        MissingDependencyError: the module (or one it needs) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        missing = (exc.name or top).split(".")[0]
        hint = INSTALL_HINTS.get(missing) or INSTALL_HINTS.get(top) or f"pip install {missing}"
        raise MissingDependencyError(
            f"{purpose} needs the {missing!r} package, which is not installed: run `{hint}`"
        ) from exc


def faiss(purpose: str = "the FAISS index") -> ModuleType:
    """The ``faiss`` module (CPU or GPU build), or a one-line install hint."""
    return require("faiss", purpose)
