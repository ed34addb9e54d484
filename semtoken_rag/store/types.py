"""Result and warning types of the store."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

logger = logging.getLogger("semtoken_rag.store")


class StoreWarning(UserWarning):
    """Something in the store was damaged and has been repaired (details in the message)."""


@dataclass(frozen=True)
class StoreStats:
    """A snapshot of the store.

    Attributes:
        hits: Keys found by this process's :meth:`FingerprintStore.get_many` calls.
        misses: Keys not found (or found damaged) by this process.
        entries: Chunks stored (all processes).
        vectors: Word vectors stored.
        payload_bytes: Bytes of vectors + offsets (what ``max_bytes`` limits).
        bytes_on_disk: Database, WAL and index files (0 in memory mode).
        bytes_in_memory: The loaded search index (0 until :meth:`search` is used).
    """

    hits: int
    misses: int
    entries: int
    vectors: int
    payload_bytes: int
    bytes_on_disk: int
    bytes_in_memory: int


def warn_repaired(message: str) -> None:
    """Log and warn (as :class:`StoreWarning`) about damage that was repaired."""
    logger.warning(message)
    warnings.warn(message, StoreWarning, stacklevel=4)
