"""Fingerprint codecs: how word vectors become bytes in the store, from FAISS or numpy.

A registry: the trade-off between bytes and fidelity is a measurement (docs/store.md, "Codecs").
Lossy codecs are FAISS standalone codecs (``sa_encode``/``sa_decode``), raw ones numpy dtypes;
an 8-bit PQ encodes by a numpy matrix product per sub-quantizer (twice ``sa_encode``'s speed,
same codes up to float32 ties, cosines for the fidelity guard without a decode).  A codebook is
``faiss.serialize_index`` bytes, never pickle; training is deterministic (the store picks the
sample, the spec fixes k-means' seed).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from semtoken_rag import optional
from semtoken_rag.errors import StoreError

logger = logging.getLogger(__name__)

#: Vectors per batch handed to FAISS when encoding or decoding (bounds temporary memory).
_BATCH = 65536
#: k-means iterations of a PQ codebook (FAISS's 25 gains nothing; docs/store.md, "Training").
KMEANS_ITERATIONS = 10
#: Reference dimension of the codec names (MiniLM-L6): ``pq64`` is 64 bytes per 384-dim word.
REFERENCE_DIM = 384


@dataclass(frozen=True)
class CodecSpec:
    """A named way to store word vectors, and how it is trained.

    Attributes:
        name: Registry name (``float16``, ``pq64``, ...).
        kind: ``raw`` (numpy dtype), ``sq`` (scalar quantizer) or ``pq`` (product quantizer).
        bits: Bits per number for ``raw`` and the scalar quantizers.
        m: PQ sub-quantizers at 384 dimensions, scaled to others (the nearest divisor).
        nbits: Bits per PQ sub-quantizer code (8: 256 centroids each; 4: 16).
        train_min: Vectors stored before the codec is trained (kept in :data:`STAGING` until
            then, as are vectors the codebook fits badly).
        train_max: Largest training sample; more staged vectors are subsampled with ``seed``.
        seed: Seed of the subsample and of FAISS's k-means.
        description: One line for ``store info`` and the docs.
    """

    name: str
    kind: str
    bits: int = 0
    m: int = 0
    nbits: int = 8
    train_min: int = 0
    train_max: int = 65536
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        # Typed errors for fields of the wrong type (``with_options(train_min="5")``).
        for name in ("name", "kind"):
            if not isinstance(getattr(self, name), str):
                raise StoreError(f"codec spec: {name} must be a str, got {getattr(self, name)!r}")
        for name in ("bits", "m", "nbits", "train_min", "train_max", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise StoreError(
                    f"codec {self.name!r}: {name} must be an int >= 0, got {value!r:.60}"
                )
            object.__setattr__(self, name, int(value))  # numpy integers made plain (JSON)
        if self.kind not in _FACTORIES:
            raise StoreError(f"unknown codec kind {self.kind!r} (known: {', '.join(_FACTORIES)})")
        # Smallest training sample FAISS accepts (PQ: one point per k-means centroid).
        need = {"raw": 0, "sq": 1, "pq": 2**self.nbits}[self.kind]
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
        fields = ("name", "kind", "bits", "m", "nbits")
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
            return cls(**json.loads(text))
        except (ValueError, TypeError) as exc:  # str(text): a non-str must not fail the message
            raise StoreError(f"unreadable codec description {str(text)[:80]!r}: {exc}") from exc


def _pq_m(m: int, dim: int) -> int:
    """The divisor of ``dim`` nearest to ``m`` scaled from :data:`REFERENCE_DIM`."""
    target = m * dim / REFERENCE_DIM
    return min((d for d in range(1, dim + 1) if dim % d == 0), key=lambda d: (abs(d - target), -d))


#: Codec kind -> factory string at a dimension (a registry, not an if/elif chain).
_FACTORIES: dict[str, Callable[[CodecSpec, int], str]] = {
    "raw": lambda s, d: f"<f{s.bits // 8}",
    "sq": lambda s, d: f"SQ{s.bits}",
    # ``np``: no polysemous training (unused by decoding, and most of the training time).
    "pq": lambda s, d: f"PQ{_pq_m(s.m, d)}x{s.nbits}np",
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
    )
}
#: Codec of new stores (chosen from the measured table in docs/store.md).
DEFAULT_CODEC = "pq64"


def get_codec(codec: str | CodecSpec | None) -> CodecSpec:
    """The spec of a codec name (``None`` -> :data:`DEFAULT_CODEC`), or the spec itself.

    A spec may change only a registered codec's training options (``train_min``, ``train_max``,
    ``seed``): a reopen looks the codec up by name, so another format would be unusable later.

    Raises:
        StoreError: unknown name (the message lists the known ones), or a spec whose format
            fields differ from its registered codec's (checked before anything is created).
    """
    if isinstance(codec, CodecSpec):
        known = CODECS.get(codec.name)
        if known is None:
            raise StoreError(
                f"unknown fingerprint codec {codec.name!r}; choose one of {', '.join(CODECS)} "
                "(a CodecSpec may change only the training options of a registered codec)"
            )
        if not known.same_codec(codec):
            raise StoreError(
                f"codec spec {codec.name!r} differs from the registered codec of that name "
                f"({known.to_json()}) in its format (kind, bits, m, nbits); only training "
                "options (train_min, train_max, seed) may change"
            )
        return codec
    name = DEFAULT_CODEC if codec is None else codec
    try:
        return CODECS[name]
    except (KeyError, TypeError):
        raise StoreError(
            f"unknown fingerprint codec {name!r}; choose one of {', '.join(CODECS)}"
        ) from None


class RawCodec:
    """Vectors as raw little-endian floats (numpy); float32 is returned exactly as stored."""

    def __init__(self, dim: int, dtype: str) -> None:
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.code_size = dim * self.dtype.itemsize
        self._exact = self.dtype == np.dtype("<f4")

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, dim)`` floats -> ``(n, code_size) uint8``; a lossy dtype keeps only directions
        (:meth:`decode` renormalises), so rows are scaled to unit length first (float16 would
        overflow to NaN or flush to zero)."""
        raw = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if not self._exact and raw.size:
            raw = raw.copy()  # scaled in place below; the caller's vectors stay as they are
            peak = np.abs(raw).max(axis=1, keepdims=True)  # first: a float32 square overflows
            renormalise(np.divide(raw, peak, out=raw, where=peak > 0))
        raw = np.ascontiguousarray(raw, dtype=self.dtype)
        return raw.view(np.uint8).reshape(len(raw), self.code_size)

    def encode_with_cosines(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, (n,) decoded-vs-original cosines)``: what the fidelity guard checks."""
        codes = self.encode(vectors)
        return codes, row_cosines(self.decode(codes), np.asarray(vectors, np.float32))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, code_size) uint8`` -> ``(n, dim) float32`` (renormalised unless exact)."""
        x = np.ascontiguousarray(codes).view(self.dtype).reshape(-1, self.dim)
        out = x.astype(np.float32)
        return out if self._exact else renormalise(out)


class FaissCodec:
    """A trained FAISS standalone codec; ``faiss`` is the module, to read an 8-bit PQ's
    centroids (:func:`pq_assign` encodes with them, see the module doc)."""

    def __init__(self, index: Any, faiss: Any) -> None:
        self.index = index
        self.dim = int(index.d)
        self.code_size = int(index.sa_code_size())
        self._pq: tuple[np.ndarray, np.ndarray] | None = None
        self._cents: np.ndarray | None = None
        pq = getattr(faiss.downcast_index(index), "pq", None)
        if pq is not None and int(pq.nbits) == 8:
            cents = faiss.vector_to_array(pq.centroids).reshape(int(pq.M), int(pq.ksub), -1)
            # (M, dsub, ksub) transposed centroids, scaled by 2, and (M, ksub) squared norms.
            self._pq = (np.ascontiguousarray(2.0 * cents.transpose(0, 2, 1)), (cents**2).sum(-1))
            # Flat (M * ksub, dsub) table: code c of sub-quantizer m is row m * ksub + c.
            self._cents = np.ascontiguousarray(cents.reshape(-1, cents.shape[2]))
            self._offsets = (np.arange(int(pq.M)) * int(pq.ksub)).astype(np.intp)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, dim) float32`` -> ``(n, code_size) uint8``."""
        x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(x) == 0:
            return np.zeros((0, self.code_size), np.uint8)
        if self._pq is not None:
            return pq_assign(x, *self._pq)[0]
        return np.concatenate(
            [self.index.sa_encode(x[lo : lo + _BATCH]) for lo in range(0, len(x), _BATCH)]
        )

    def encode_with_cosines(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, (n,) decoded-vs-original cosines)`` (8-bit PQ: from the assignment)."""
        x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if self._pq is None or len(x) == 0:
            codes = self.encode(x)
            return codes, row_cosines(self.decode(codes), x)
        codes, dots, sq_norms = pq_assign(x, *self._pq)
        norms = np.sqrt(sq_norms) * np.linalg.norm(x, axis=1)
        return codes, np.divide(dots, norms, out=np.ones_like(dots), where=norms > 0)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, code_size) uint8`` -> ``(n, dim) float32``, L2-renormalised."""
        c = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, self.code_size)
        if len(c) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self._cents is not None:
            # sa_decode's centroid copy without FAISS's ~1 ms per call (a lookup's small decodes).
            rows = self._cents.take(c.astype(np.intp) + self._offsets, axis=0)
            return renormalise(rows.reshape(len(c), self.dim))
        out = np.concatenate(
            [self.index.sa_decode(c[lo : lo + _BATCH]) for lo in range(0, len(c), _BATCH)]
        )
        return renormalise(out)


#: A ready codec for vectors of one dimension (see :func:`~.codebooks.runtime_codec`).
VectorCodec = RawCodec | FaissCodec

#: Vectors per block of :func:`pq_assign` (bounds its ``(block, ksub)`` temporaries: 8 MB).
_ASSIGN_BLOCK = 8192


def pq_assign(x: np.ndarray, cents2t: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, ...]:
    """Nearest centroid of every sub-vector: ``argmax(2 x.c - |c|^2)`` (= ``argmin |x - c|^2``).

    ``x`` is ``(n, M * dsub) float32``; ``cents2t`` the ``(M, dsub, ksub) float32`` centroids,
    transposed and doubled; ``norms`` their ``(M, ksub) float32`` squared norms.  Returns
    ``(n, M) uint8`` codes (8-bit PQ only), and the ``(n,) float32`` dot products of ``x`` with
    its decoded vectors and their squared norms (sums over the disjoint sub-quantizers).
    """
    n_sub, dsub, ksub = cents2t.shape
    out = np.empty((len(x), n_sub), np.uint8)
    best_sum, sq_norms = np.zeros(len(x), np.float32), np.zeros(len(x), np.float32)
    buf = np.empty((min(len(x), _ASSIGN_BLOCK), ksub), np.float32)
    for lo in range(0, len(x), _ASSIGN_BLOCK):
        block, hi = x[lo : lo + _ASSIGN_BLOCK], min(lo + _ASSIGN_BLOCK, len(x))
        scores = buf[: len(block)]
        for m in range(n_sub):
            np.matmul(block[:, m * dsub : (m + 1) * dsub], cents2t[m], out=scores)
            scores -= norms[m]
            best = scores.argmax(axis=1)
            out[lo:hi, m] = best
            best_sum[lo:hi] += np.take_along_axis(scores, best[:, None], 1)[:, 0]
            sq_norms[lo:hi] += norms[m][best]
    # sum of (2 x.c - |c|^2) plus sum of |c|^2 is twice the dot product.
    return out, (best_sum + sq_norms) / 2, sq_norms


def renormalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in place (zero rows stay zero); returns ``x``."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms == 0] = 1.0
    x /= norms[:, None]
    return x


def training_sample(vectors: np.ndarray, spec: CodecSpec) -> np.ndarray:
    """The documented training sample of ``(n, dim) float32`` ``vectors`` (in the store's
    order): every vector, or ``spec.train_max`` drawn with ``spec.seed``."""
    if len(vectors) <= spec.train_max:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(spec.seed)
    pick = np.sort(rng.choice(len(vectors), spec.train_max, replace=False))
    return np.ascontiguousarray(vectors[pick], dtype=np.float32)


def train(spec: CodecSpec, sample: np.ndarray) -> tuple[str, bytes, float]:
    """Train ``spec`` on ``sample`` (deterministic for a given sample and machine): the FAISS
    factory string, ``faiss.serialize_index`` bytes (never pickle) and the mean decoded cosine.

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
        if (pq := getattr(index, "pq", None)) is not None:
            pq.cp.seed, pq.cp.niter = spec.seed, KMEANS_ITERATIONS
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    except RuntimeError as exc:
        raise StoreError(f"FAISS could not train codec {spec.name!r} ({factory}): {exc}") from exc
    train_cos = float(np.mean(FaissCodec(index, faiss).encode_with_cosines(sample)[1]))
    state = faiss.serialize_index(index).tobytes()
    logger.info("trained %s (%s) on %d vectors: cosine %.4f", spec.name, factory, n, train_cos)
    return factory, state, train_cos


def row_cosines(decoded: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Row-wise cosines ``(n,) float32`` of decoded (unit) rows ``(n, dim)`` and the originals
    ``(n, dim)`` (1.0 for a zero original: nothing to lose)."""
    norms = np.linalg.norm(original, axis=1)
    dots = np.sum(decoded * original, axis=1)
    return np.divide(dots, norms, out=np.ones_like(dots), where=norms > 0)
