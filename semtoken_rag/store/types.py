"""Result and warning types of the store."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

from semtoken_rag.errors import StoreError

logger = logging.getLogger("semtoken_rag.store")


class StoreWarning(UserWarning):
    """Something in the store was damaged (repaired, or left alone in a read-only store)."""


class StoreDamagedError(StoreError):
    """The store is damaged and may not be repaired here (read-only, or an inspection)."""


@dataclass(frozen=True)
class StoreStats:
    """A snapshot of the store.

    Attributes:
        hits: Keys found by this process's :meth:`FingerprintStore.get_many` calls.
        misses: Keys not found (or found damaged) by this process.
        entries: Chunks stored (all processes).
        vectors: Word vectors stored.
        payload_bytes: Bytes of encoded vectors + spans (what ``max_bytes`` limits).
        bytes_on_disk: Database and WAL files (0 in memory mode): everything the store keeps.
        bytes_in_memory: The search index's codes (0 until :meth:`search` is used).
        codec: The store's codec.
        trained: Whether the codec's codebook exists (always true for raw codecs).
        staged_entries: Entries kept in float16 (before training, or not fitting the codebook).
    """

    hits: int
    misses: int
    entries: int
    vectors: int
    payload_bytes: int
    bytes_on_disk: int
    bytes_in_memory: int
    codec: str = ""
    trained: bool = True
    staged_entries: int = 0


def warn_damage(message: str) -> None:
    """Log and warn (as :class:`StoreWarning`) about damage found: repaired, or handled with a
    documented safe result (misses, nothing stored) where it could not be repaired here."""
    logger.warning(message)
    warnings.warn(message, StoreWarning, stacklevel=4)
