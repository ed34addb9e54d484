"""Fingerprint codecs: how word vectors become bytes in the store, from FAISS or numpy.

Why a registry: the store's size is dominated by word vectors (384 float32 = 1,536 bytes per
word, about 1.2 MB per 1k encoder tokens), and the right trade-off between bytes and fidelity
is a measurement (docs/store.md, "Codecs"), not a constant.  Each codec is a named
:class:`CodecSpec`; lossy ones are FAISS *standalone codecs* (``index_factory`` strings encoded
with ``sa_encode`` / decoded with ``sa_decode``: ``faiss.ScalarQuantizer``,
``faiss.ProductQuantizer``, ``faiss.PCAMatrix``), raw ones are numpy dtypes.  Nothing here is a
hand-written quantizer.

A trained codec's state (its *codebook*) is what ``faiss.serialize_index`` writes: FAISS's own
format, never pickle.  Training is deterministic: the sample is chosen by the store (see
:func:`training_sample`) and FAISS's k-means seed is fixed by the spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from semtoken_rag import optional
from semtoken_rag.errors import StoreError

logger = logging.getLogger(__name__)

#: Vectors per batch handed to FAISS when encoding or decoding (bounds temporary memory).
_BATCH = 65536
#: Reference dimension of the codec names (MiniLM-L6): ``pq64`` is 64 bytes per 384-dim word.
REFERENCE_DIM = 384


@dataclass(frozen=True)
class CodecSpec:
    """A named way to store word vectors, and how it is trained.

    Attributes:
        name: Registry name (``float16``, ``pq64``, ...).
        kind: ``raw`` (numpy dtype), ``sq`` (scalar quantizer), ``pq`` (product quantizer) or
            ``pca-sq`` (PCA then scalar quantizer).
        bits: Bits per number for ``raw`` and the scalar quantizers.
        m: PQ sub-quantizers at 384 dimensions; other dimensions keep the same sub-quantizers
            per dimension (the divisor of the dimension nearest to it).
        nbits: Bits per PQ sub-quantizer code (8: 256 centroids each; 4: 16).
        pca: PCA output dimensions at 384 input dimensions (scaled likewise).
        train_min: Vectors stored before the codec is trained (until then, and for vectors the
            codebook does not fit, entries are kept in :data:`STAGING` float16).
        train_max: Largest training sample; more staged vectors are subsampled with ``seed``.
        seed: Seed of the subsample and of FAISS's k-means.
        description: One line for ``store info`` and the docs.
    """

    name: str
    kind: str
    bits: int = 0
    m: int = 0
    nbits: int = 8
    pca: int = 0
    train_min: int = 0
    train_max: int = 65536
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _FACTORIES:
            raise StoreError(f"unknown codec kind {self.kind!r} (known: {', '.join(_FACTORIES)})")
        need = _MIN_TRAIN[self.kind](self)
        if self.trained and self.train_min < need:
            raise StoreError(
                f"codec {self.name!r}: train_min={self.train_min} is below the {need} vectors "
                "its FAISS training needs"
            )
        if self.trained and self.train_max < self.train_min:
            raise StoreError(f"codec {self.name!r}: train_max < train_min")

    @property
    def trained(self) -> bool:
        """Whether the codec needs a codebook trained on stored vectors."""
        return self.kind != "raw"

    def factory(self, dim: int) -> str:
        """The FAISS ``index_factory`` string (or numpy dtype for raw codecs) at ``dim``."""
        return _FACTORIES[self.kind](self, dim)

    def same_codec(self, other: CodecSpec) -> bool:
        """Same encoding (name and format fields); training options may differ."""
        fields = ("name", "kind", "bits", "m", "nbits", "pca")
        return all(getattr(self, f) == getattr(other, f) for f in fields)

    def with_options(self, **changes: Any) -> CodecSpec:
        """A copy with some fields changed (e.g. ``train_min`` for small stores or tests)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), as stored in the store's metadata."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CodecSpec:
        """Inverse of :meth:`to_json`.

        Raises:
            StoreError: not a codec description this version understands.
        """
        try:
            data = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"unreadable codec description {text[:80]!r}: {exc}") from exc


def _nearest_divisor(dim: int, target: float) -> int:
    divisors = [m for m in range(1, dim + 1) if dim % m == 0]
    return min(divisors, key=lambda m: (abs(m - target), -m))


def _scaled(value: int, dim: int) -> float:
    return value * dim / REFERENCE_DIM


#: Codec kind -> factory string at a dimension (a registry, not an if/elif chain).
_FACTORIES: dict[str, Callable[[CodecSpec, int], str]] = {
    "raw": lambda s, d: f"<f{s.bits // 8}",
    "sq": lambda s, d: f"SQ{s.bits}",
    # ``np``: no polysemous training (a centroid reordering for Hamming search that decoding
    # never uses, and five sixths of the training time: 131 s vs 23 s for PQ64 on 16k vectors).
    "pq": lambda s, d: f"PQ{_nearest_divisor(d, _scaled(s.m, d))}x{s.nbits}np",
    "pca-sq": lambda s, d: f"PCA{max(1, round(_scaled(s.pca, d)))},SQ{s.bits}",
}
#: Smallest training sample FAISS accepts per kind (PQ: one point per k-means centroid).
_MIN_TRAIN: dict[str, Callable[[CodecSpec], int]] = {
    "raw": lambda s: 0,
    "sq": lambda s: 1,
    "pq": lambda s: 2**s.nbits,
    "pca-sq": lambda s: 2,
}

#: The codec of entries stored before a codebook exists, or that a codebook does not fit.
STAGING = CodecSpec("float16", "raw", bits=16, description="numpy float16, lossless-ish")

#: Registered codecs.  Sizes are code bytes per 384-dim word, before spans and row overhead.
CODECS: dict[str, CodecSpec] = {
    s.name: s
    for s in (
        CodecSpec("float32", "raw", bits=32, description="numpy float32, exact (1,536 B/word)"),
        STAGING,
        CodecSpec("sq8", "sq", bits=8, train_min=4096, description="faiss SQ8 (384 B/word)"),
        CodecSpec("sq4", "sq", bits=4, train_min=4096, description="faiss SQ4 (192 B/word)"),
        CodecSpec("pq96", "pq", m=96, train_min=16384, description="faiss PQ96x8 (96 B/word)"),
        CodecSpec("pq64", "pq", m=64, train_min=16384, description="faiss PQ64x8 (64 B/word)"),
        CodecSpec("pq48", "pq", m=48, train_min=16384, description="faiss PQ48x8 (48 B/word)"),
        CodecSpec(
            "pq128x4",
            "pq",
            m=128,
            nbits=4,
            train_min=4096,
            description="faiss PQ128x4: 16 centroids per sub-quantizer (64 B/word)",
        ),
        CodecSpec(
            "pca192-sq4",
            "pca-sq",
            bits=4,
            pca=192,
            train_min=4096,
            description="faiss PCAMatrix 384->192 + SQ4 (96 B/word)",
        ),
    )
}
#: Codec of new stores (chosen from the measured table in docs/store.md).
DEFAULT_CODEC = "pq64"


def get_codec(codec: str | CodecSpec | None) -> CodecSpec:
    """The spec of a codec name (``None`` -> :data:`DEFAULT_CODEC`), or the spec itself.

    Raises:
        StoreError: unknown name (the message lists the known ones).
    """
    if isinstance(codec, CodecSpec):
        return codec
    name = DEFAULT_CODEC if codec is None else codec
    try:
        return CODECS[name]
    except (KeyError, TypeError):
        raise StoreError(
            f"unknown fingerprint codec {name!r}; choose one of {', '.join(CODECS)}"
        ) from None


class VectorCodec(Protocol):
    """A ready codec for vectors of one dimension (see :func:`build_codec`)."""

    dim: int
    code_size: int

    def encode(self, vectors: np.ndarray) -> np.ndarray: ...

    def decode(self, codes: np.ndarray) -> np.ndarray: ...


class RawCodec:
    """Vectors as raw little-endian floats (numpy); float32 is returned exactly as stored."""

    def __init__(self, dim: int, dtype: str) -> None:
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.code_size = dim * self.dtype.itemsize
        self._exact = self.dtype == np.dtype("<f4")

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, dim)`` floats -> ``(n, code_size) uint8``."""
        raw = np.ascontiguousarray(vectors, dtype=self.dtype)
        return raw.view(np.uint8).reshape(len(raw), self.code_size)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, code_size) uint8`` -> ``(n, dim) float32`` (renormalised unless exact)."""
        x = np.ascontiguousarray(codes).view(self.dtype).reshape(-1, self.dim)
        out = x.astype(np.float32)
        return out if self._exact else renormalise(out)


class FaissCodec:
    """A trained FAISS standalone codec (``sa_encode`` / ``sa_decode``)."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.dim = int(index.d)
        self.code_size = int(index.sa_code_size())

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, dim) float32`` -> ``(n, code_size) uint8``."""
        x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(x) == 0:
            return np.zeros((0, self.code_size), np.uint8)
        return np.concatenate(
            [self.index.sa_encode(x[lo : lo + _BATCH]) for lo in range(0, len(x), _BATCH)]
        )

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, code_size) uint8`` -> ``(n, dim) float32``, L2-renormalised."""
        c = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, self.code_size)
        if len(c) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = np.concatenate(
            [self.index.sa_decode(c[lo : lo + _BATCH]) for lo in range(0, len(c), _BATCH)]
        )
        return renormalise(out)


def renormalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in place (zero rows stay zero); returns ``x``."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


@dataclass(frozen=True)
class Codebook:
    """A codec made concrete for one dimension, as stored in the ``codebooks`` table.

    Attributes:
        id: Row id (entries name the codebook they were encoded with).
        codec: Spec name.
        dim: Vector dimension.
        factory: FAISS factory string, or the numpy dtype of a raw codec.
        state: ``faiss.serialize_index`` bytes of the trained codec (empty for raw codecs).
        sha256: Digest of codec, dim, factory and state (checked before any use).
        encoder: ``cache_id`` of the encoder whose vectors trained it ("" when unknown).
        train_vectors: Size of the training sample.
        train_cos: Mean cosine of decoded vs original vectors over the training sample.
    """

    id: int
    codec: str
    dim: int
    factory: str
    state: bytes
    sha256: bytes
    encoder: str = ""
    train_vectors: int = 0
    train_cos: float = 1.0

    @staticmethod
    def digest(codec: str, dim: int, factory: str, state: bytes) -> bytes:
        h = hashlib.sha256(f"{codec}\0{dim}\0{factory}\0".encode())
        h.update(state)
        return h.digest()

    @property
    def intact(self) -> bool:
        """Whether the stored digest matches the content."""
        return self.digest(self.codec, self.dim, self.factory, self.state) == self.sha256


def build_codec(cb: Codebook) -> VectorCodec:
    """The runtime codec of a codebook.

    Raises:
        ValueError: the codebook fails its checksum or FAISS cannot read it (callers treat
            this as damage).
    """
    if not cb.intact:
        raise ValueError(f"codebook {cb.id} ({cb.codec}, dim {cb.dim}) fails its checksum")
    if not cb.state:
        return RawCodec(cb.dim, cb.factory)
    faiss = optional.faiss("the fingerprint store's codec")
    try:
        index = faiss.deserialize_index(np.frombuffer(cb.state, dtype=np.uint8))
    except RuntimeError as exc:
        raise ValueError(f"codebook {cb.id} is unreadable by FAISS: {exc}") from exc
    if int(index.d) != cb.dim or not index.is_trained:
        raise ValueError(f"codebook {cb.id} disagrees with its header (dim {index.d})")
    return FaissCodec(index)


def raw_codebook(spec: CodecSpec, dim: int) -> tuple[str, bytes, bytes]:
    """``(factory, state, sha256)`` of an untrained (raw numpy) codec."""
    factory = spec.factory(dim)
    return factory, b"", Codebook.digest(spec.name, dim, factory, b"")


def training_sample(vectors: np.ndarray, spec: CodecSpec) -> np.ndarray:
    """The documented training sample: every vector, or ``train_max`` drawn with ``seed``.

    Args:
        vectors: ``(n, dim) float32`` candidate vectors in entry-id (insertion) order.
        spec: The codec (its ``train_max`` and ``seed``).
    """
    if len(vectors) <= spec.train_max:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(spec.seed)
    pick = np.sort(rng.choice(len(vectors), spec.train_max, replace=False))
    return np.ascontiguousarray(vectors[pick], dtype=np.float32)


def training_rows(ids: np.ndarray, counts: np.ndarray, spec: CodecSpec) -> np.ndarray:
    """Entries whose vectors are read to train a codec over a large existing store.

    A seeded uniform permutation of the entries (``default_rng(spec.seed)``) taken until it
    holds ``train_max`` vectors, returned in id order (then :func:`training_sample` applies).
    Why entries, not vectors: a migration must not read every vector of a large store twice.
    """
    order = np.random.default_rng(spec.seed).permutation(len(ids))
    enough = np.searchsorted(np.cumsum(counts[order]), spec.train_max) + 1
    return np.sort(ids[order[:enough]])


def train(spec: CodecSpec, sample: np.ndarray) -> tuple[str, bytes, bytes, float]:
    """Train ``spec`` on ``sample`` (deterministic for a given sample and machine).

    Returns:
        ``(factory, state, sha256, train_cos)``.

    Raises:
        StoreError: too few vectors, or FAISS refused the sample (never a raw FAISS error).
    """
    n, dim = sample.shape
    if n < spec.train_min:
        raise StoreError(
            f"codec {spec.name!r} needs {spec.train_min} vectors to train, got {n}; entries "
            "stay in float16 until then"
        )
    faiss = optional.faiss("training the fingerprint store's codec")
    factory = spec.factory(dim)
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        _seed_faiss(faiss, index, spec.seed)
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    except RuntimeError as exc:
        raise StoreError(f"FAISS could not train codec {spec.name!r} ({factory}): {exc}") from exc
    codec = FaissCodec(index)
    decoded = codec.decode(codec.encode(sample))
    train_cos = mean_cosine(decoded, sample)
    state = faiss.serialize_index(index).tobytes()
    logger.info(
        "trained codec %s (%s) on %d vectors of dim %d: mean cosine %.4f",
        spec.name,
        factory,
        n,
        dim,
        train_cos,
    )
    return factory, state, Codebook.digest(spec.name, dim, factory, state), train_cos


def _seed_faiss(faiss: Any, index: Any, seed: int) -> None:
    """Fix the k-means seed of every product quantizer inside ``index``."""
    node = faiss.downcast_index(index)
    while node is not None:
        pq = getattr(node, "pq", None)
        if pq is not None:
            pq.cp.seed = seed
        inner = getattr(node, "index", None)
        node = faiss.downcast_index(inner) if inner is not None else None


def row_cosines(decoded: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Row-wise cosines ``(n,) float32`` of decoded (unit) rows ``(n, dim)`` and the originals
    ``(n, dim)`` (1.0 for a zero original: nothing to lose)."""
    norms = np.linalg.norm(original, axis=1)
    dots = np.sum(decoded * original, axis=1)
    return np.divide(dots, norms, out=np.ones_like(dots), where=norms > 0)


def mean_cosine(decoded: np.ndarray, original: np.ndarray) -> float:
    """Mean row-wise cosine of decoded (unit) rows and the originals (1.0 when empty)."""
    if len(decoded) == 0:
        return 1.0
    return float(np.mean(row_cosines(decoded, original)))
