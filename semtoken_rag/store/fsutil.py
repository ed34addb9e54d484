"""File-system helpers of the store: quarantine of damaged files, stale temporary files."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

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


def remove_stale_temps(directory: Path, name: str) -> None:
    """Delete temporary files ``name.tmp-*`` a killed atomic write left behind (format 1
    wrote its index file that way).

    Call only while holding the store's cross-process lock (no writer is active then).
    """
    for tmp in directory.glob(f"{name}.tmp-*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            logger.info("removed stale temporary file %s", tmp)


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
