"""The FAISS search index over stored word fingerprints: a rebuildable cache of SQLite.

The index is an exact inner-product index (``IndexFlatIP``) of every stored word vector of one
dimension, plus two arrays mapping index positions to ``(entry id, word index)``.  It is a
*derived* structure: SQLite holds the authoritative vectors, and the index records the SQLite
``token`` (a random id drawn by every committing transaction) of the state it was built from.

File format (``vectors.faiss``), written atomically (temp file + fsync + ``os.replace``)::

    b"SEMTKIDX" | u64 header length | header JSON | entry ids (<i8) | word idx (<i4) | faiss bytes

The header holds the token, dimension, vector count and the sha256 of everything after it.  A
file is used only when its checksum verifies *and* its token equals the database's current
token, i.e. it describes exactly the committed state; anything else is rebuilt from SQLite.
No pickle: the FAISS part is ``faiss.serialize_index`` output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_rag import optional
from semtoken_rag.errors import StoreError
from semtoken_rag.store.fsutil import atomic_write

logger = logging.getLogger(__name__)

MAGIC = b"SEMTKIDX"
_GPU_RES: Any = None


class DamagedIndex(Exception):
    """Internal: the index file is truncated, garbage or fails its checksum."""


def gpu_available() -> bool:
    """True when faiss was built with GPU support and sees a CUDA device."""
    faiss = optional.faiss("the fingerprint store's search index")

    try:
        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except Exception:  # a broken CUDA setup must not break the CPU path
        return False


def to_search_device(index: Any, use_gpu: str) -> Any:
    """Move an index to GPU for searching when asked/possible; the CPU copy stays the master.

    Args:
        index: A CPU faiss index.
        use_gpu: ``auto`` (GPU when faiss-gpu and CUDA are present), ``never`` or ``always``.

    Raises:
        StoreError: ``always`` without a usable GPU.
    """
    global _GPU_RES
    if use_gpu == "never" or (use_gpu == "auto" and not gpu_available()):
        return index
    if not gpu_available():
        raise StoreError("use_gpu='always' but faiss has no GPU support or sees no CUDA device")
    faiss = optional.faiss("the fingerprint store's search index")

    if _GPU_RES is None:
        _GPU_RES = faiss.StandardGpuResources()
    logger.info("search index of %d vectors moved to GPU 0", index.ntotal)
    return faiss.index_cpu_to_gpu(_GPU_RES, 0, index)


@dataclass
class SearchIndex:
    """Exact inner-product index of stored word vectors of one dimension.

    Attributes:
        dim: Vector dimension.
        token: Database token of the state this index reflects.
        deletions: The database's deletion counter at that state (detects evictions).
        max_entry_id: Largest entry id included (entries are appended in id order).
        entry_ids: ``(ntotal,) int64`` entry id of each index position.
        word_idx: ``(ntotal,) int32`` word index of each position inside its chunk.
    """

    dim: int
    token: str = ""
    deletions: int = 0
    max_entry_id: int = 0
    entry_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    word_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    cpu: Any = None
    use_gpu: str = "auto"
    _search: Any = None

    def __post_init__(self) -> None:
        if self.cpu is None:
            faiss = optional.faiss("the fingerprint store's search index")

            self.cpu = faiss.IndexFlatIP(self.dim)

    @property
    def ntotal(self) -> int:
        return int(self.cpu.ntotal)

    @property
    def nbytes(self) -> int:
        return self.ntotal * self.dim * 4 + self.entry_ids.nbytes + self.word_idx.nbytes

    def add(self, entry_id: int, vectors: np.ndarray) -> None:
        """Append one entry's word vectors ``(n, dim) float32``."""
        n = len(vectors)
        if n:
            self.cpu.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self.entry_ids = np.concatenate([self.entry_ids, np.full(n, entry_id, np.int64)])
            self.word_idx = np.concatenate([self.word_idx, np.arange(n, dtype=np.int32)])
            self._search = None
        self.max_entry_id = max(self.max_entry_id, entry_id)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` positions by inner product.

        Returns:
            ``(scores (q, k) float32, positions (q, k) int64)``; ``-1`` where fewer exist.
        """
        if self._search is None:
            self._search = to_search_device(self.cpu, self.use_gpu)
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        scores, pos = self._search.search(q, k)
        return scores, pos

    # -- file --------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the index atomically (see the module docstring for the format)."""
        faiss = optional.faiss("the fingerprint store's search index")

        payload = [
            self.entry_ids.astype("<i8").tobytes(),
            self.word_idx.astype("<i4").tobytes(),
            faiss.serialize_index(self.cpu).tobytes(),
        ]
        digest = hashlib.sha256()
        for p in payload:
            digest.update(p)
        header = json.dumps(
            {
                "dim": self.dim,
                "token": self.token,
                "deletions": self.deletions,
                "max_entry_id": self.max_entry_id,
                "ntotal": self.ntotal,
                "sha256": digest.hexdigest(),
            }
        ).encode()
        atomic_write(path, [MAGIC, struct.pack("<Q", len(header)), header, *payload])


def read_index_file(path: Path, *, deserialize: bool = True) -> SearchIndex | None:
    """Read and verify an index file.

    Args:
        path: The file.
        deserialize: ``False`` only verifies (header, checksum) and returns ``None``.

    Raises:
        DamagedIndex: truncated, garbage, or the checksum does not match.
    """
    data = path.read_bytes()
    try:
        if data[:8] != MAGIC:
            raise DamagedIndex("bad magic (not a semtoken index file)")
        (hlen,) = struct.unpack("<Q", data[8:16])
        if hlen > len(data) - 16:
            raise DamagedIndex("header length beyond end of file (truncated)")
        header = json.loads(data[16 : 16 + hlen])
        body = memoryview(data)[16 + hlen :]
        if hashlib.sha256(body).hexdigest() != header["sha256"]:
            raise DamagedIndex("checksum mismatch (truncated or overwritten)")
        if not deserialize:
            return None
        n = int(header["ntotal"])
        ids = np.frombuffer(body[: 8 * n], dtype="<i8").astype(np.int64)
        widx = np.frombuffer(body[8 * n : 12 * n], dtype="<i4").astype(np.int32)
        faiss = optional.faiss("the fingerprint store's search index")

        cpu = faiss.deserialize_index(np.frombuffer(body[12 * n :], dtype=np.uint8))
        if cpu.ntotal != n or cpu.d != int(header["dim"]):
            raise DamagedIndex("index shape disagrees with its header")
        return SearchIndex(
            dim=int(header["dim"]),
            token=str(header["token"]),
            deletions=int(header["deletions"]),
            max_entry_id=int(header["max_entry_id"]),
            entry_ids=ids,
            word_idx=widx,
            cpu=cpu,
        )
    except DamagedIndex:
        raise
    except (ValueError, KeyError, TypeError, struct.error, RuntimeError) as exc:
        raise DamagedIndex(f"unreadable index file: {exc}") from exc
