"""File-system helpers of the store: quarantine of damaged files, stale temporary files."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from semtoken_rag.errors import StoreError

logger = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (so a rename survives power loss); no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def quarantine(directory: Path, names: Iterable[str]) -> Path | None:
    """Move the named files of ``directory`` into ``directory/quarantine-<timestamp>/``.

    Damaged files are kept (never deleted) so a person can inspect or recover them.

    Returns:
        The quarantine folder, or ``None`` when none of the files existed.
    """
    present = [directory / n for n in names if (directory / n).exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = directory / f"quarantine-{stamp}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    target.mkdir(parents=True, exist_ok=True)
    for p in present:
        os.replace(p, target / p.name)
    fsync_dir(directory)
    return target


def files_size(directory: Path, names: Iterable[str]) -> int:
    """Bytes of the files ``names`` in ``directory`` (missing ones count 0)."""
    total = 0
    for name in names:
        with contextlib.suppress(OSError):
            total += (directory / name).stat().st_size
    return total


def acquire_lock(lock: Any, path: Path | str, hint: str) -> None:
    """Take a store's ``filelock.FileLock``, or raise a :class:`StoreError` that says why.

    Args:
        lock: The store's file lock (its timeout applies).
        path: The store directory (named in the message).
        hint: What to do about a lock file that cannot be created (appended to that message).
    """
    from filelock import Timeout

    try:
        lock.acquire()
    except Timeout as exc:
        raise StoreError(
            f"timed out waiting for the lock of {path} (another process writing)"
        ) from exc
    except OSError as exc:
        raise StoreError(f"cannot take the lock file of {path} ({exc}); {hint}") from exc


def prepare_directory(path: Path) -> None:
    """Create a writable store directory, or raise :class:`StoreError` saying why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create store directory {path}: {exc}") from exc
    if not path.is_dir():
        raise StoreError(f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StoreError(
            f"store directory {path} is not writable; open it with read_only=True for lookups"
        )


def verify_default(db_file: Path, verify_on_open: bool | None, max_bytes: int) -> bool:
    """Whether to run ``PRAGMA quick_check`` on open: as asked, else only for databases up to
    ``max_bytes`` (it reads the whole file; rows are still checksummed on every read)."""
    if verify_on_open is not None:
        return verify_on_open
    try:
        size = db_file.stat().st_size
    except OSError:
        return True
    if size > max_bytes:
        logger.info(
            "store %s is %.1f GiB: PRAGMA quick_check skipped on open (rows are still "
            "checksummed on every read; verify_on_open=True forces it)",
            db_file.parent,
            size / 2**30,
        )
    return size <= max_bytes
