"""Scale-out on Ray: distributed fingerprint ingestion (``pip install 'semtoken-rag[ray]'``).

Neither ``import semtoken_rag`` nor this package imports Ray: it loads on first need through
:func:`semtoken_rag.optional.require` (a missing extra is a one-line ``MissingDependencyError``).
Entry point: ``ray_ingest(documents, "fp-store", ray=RayOptions(actors=4))``; see docs/ray.md."""

from __future__ import annotations

from semtoken_rag.distributed.actor import EncoderMismatchError, FingerprintActor
from semtoken_rag.distributed.cluster import RayConnectionError, ray_session
from semtoken_rag.distributed.ingest import RayOptions, RayRunner, ray_ingest

__all__ = [
    "EncoderMismatchError",
    "FingerprintActor",
    "RayConnectionError",
    "RayOptions",
    "RayRunner",
    "ray_ingest",
    "ray_session",
]
