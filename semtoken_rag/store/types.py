"""Result and warning types of the store."""

from __future__ import annotations

import logging
import numbers
import sqlite3
import warnings
from dataclasses import dataclass

from semtoken_rag.errors import StoreError
from semtoken_rag.store.db import is_damage

logger = logging.getLogger("semtoken_rag.store")


class StoreWarning(UserWarning):
    """Something in the store was damaged (repaired, or left alone in a read-only store)."""


class StoreDamagedError(StoreError):
    """The store is damaged and may not be repaired here (read-only, or an inspection)."""


@dataclass(frozen=True)
class StoreStats:
    """A snapshot of the store.

    Attributes:
        hits: Chunks served by this process's lookups.
        misses: Chunks not found (or found damaged) by this process's lookups.
        documents: Documents stored (all processes).
        words: Word vectors stored.
        payload_bytes: Bytes of codes and words (what ``max_bytes`` limits).
        bytes_on_disk: Database and write-ahead-log files (0 in memory mode); after
            :meth:`FingerprintStore.close` the log is merged into the database.
        codec: The store's codec.
        trained: Whether the codec's codebook exists (always true for raw codecs).
        staged_words: Words kept in float16 (before training, or not fitting the codebook).
    """

    hits: int
    misses: int
    documents: int
    words: int
    payload_bytes: int
    bytes_on_disk: int
    codec: str = ""
    trained: bool = True
    staged_words: int = 0


class CodebookChangedError(StoreError):
    """Encoded documents name a codebook the store does not hold (or holds with another
    digest): the store's codec changed under a running ingestion.  Nothing was written."""


def warn_damage(message: str) -> None:
    """Log and warn (as :class:`StoreWarning`) about damage found: repaired, or handled with a
    documented safe result (misses, nothing stored) where it could not be repaired here."""
    logger.warning(message)
    warnings.warn(message, StoreWarning, stacklevel=4)


def check_max_bytes(max_bytes: object) -> int | None:
    """``None`` or a positive integer (never a float, NaN or bool: eviction compares it).

    Raises:
        StoreError: naming the value.
    """
    if max_bytes is None:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 1:
        raise StoreError(f"max_bytes must be a positive integer or None, got {max_bytes!r}")
    return int(max_bytes)


def read_failed(exc: sqlite3.DatabaseError, where: str, consequence: str) -> None:
    """A read SQLite refused: damage is a warning and a documented safe result
    (``consequence``); anything else (busy, permissions) a :class:`StoreError`."""
    if not is_damage(exc):
        raise StoreError(f"fingerprint store read failed: {exc}") from exc
    warn_damage(
        f"fingerprint store {where} read failed ({exc}); {consequence}. Reopen it with "
        "verify_on_open=True to quarantine and repair it"
    )


def write_failed(exc: sqlite3.DatabaseError, where: str) -> None:
    """A write SQLite refused (rolled back): damage is a warning (nothing stored); anything
    else (disk full, busy, permissions) a :class:`StoreError`."""
    if not is_damage(exc):
        raise StoreError(f"fingerprint store write failed: {exc}") from exc
    warn_damage(
        f"fingerprint store {where} is damaged ({exc}); new fingerprints were not stored. "
        "Reopen it with verify_on_open=True to quarantine and repair it"
    )
