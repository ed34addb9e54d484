"""The Ray Data worker of distributed ingestion: one encoder per actor, documents in, codes out.

Actors, not tasks: loading the encoder costs seconds (and GPU memory), and an actor loads it once.
It applies the store's codec through :func:`~semtoken_rag.ingestion.worker.encode_batch`, as a
single process does, so only codes cross the network and the driver only writes."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import numpy as np

from semtoken_rag.errors import ConfigError, SemTokenError
from semtoken_rag.ingestion.documents import PlannedDocument
from semtoken_rag.ingestion.worker import encode_batch
from semtoken_rag.store.codebooks import CodecSet

logger = logging.getLogger(__name__)

#: Columns of a batch of documents the actors receive.
INPUT_COLUMNS = ("id", "key", "text", "names")


class EncoderMismatchError(SemTokenError):
    """A worker's encoder has another identity (weights, windows, dimension) than the run's."""


def encoder_identity(config: Any) -> tuple[str, int]:
    """``(cache_id, dim)`` of the encoder, loaded as an actor would (run as a Ray task).

    Keys contain ``cache_id``, known only once a worker loads the model: asked first, it lets the
    driver skip stored documents before encoding, and a worker without the model fails once."""
    from semtoken_rag.encoder import TransformerEncoder

    enc = TransformerEncoder.from_config(config)
    return str(enc.cache_id), int(enc.dim)


def object_column(values: list[Any]) -> np.ndarray:
    """A 1-d object array of ``values`` (``np.asarray`` would stack equal-shaped items)."""
    return np.fromiter(values, dtype=object, count=len(values))


def document_columns(docs: list[PlannedDocument]) -> dict[str, list[Any]]:
    """Planned documents as :data:`INPUT_COLUMNS` (``names`` a tuple: an id may hold any text)."""
    return {
        "id": [d.id for d in docs],
        "key": [d.key for d in docs],
        "text": [d.text for d in docs],
        "names": [tuple(d.names) for d in docs],
    }


def _names(value: Any) -> tuple[str, ...]:
    """A row's names: a tuple of them (listed documents) or one id (a dataset's rows)."""
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(str(n) for n in value if n)


def planned_rows(batch: dict[str, np.ndarray]) -> list[PlannedDocument]:
    """A Ray Data batch's documents (a non-str text is kept: it fails alone in encode_batch)."""
    return [
        PlannedDocument(str(i), str(k), t, _names(names), 0)
        for i, k, t, names in zip(*(batch[c] for c in INPUT_COLUMNS), strict=True)
    ]


class FingerprintActor:
    """``Dataset.map_batches`` worker: encodes documents for the store with ``codecs`` (each actor
    loads ``config``'s model from its own disk); override :meth:`encode` to change the encoding.

    Raises:
        EncoderMismatchError: this worker's encoder has another ``cache_id`` or dim than the run's.
    """

    def __init__(self, config: Any, cache_id: str, codecs: CodecSet) -> None:
        from semtoken_rag.encoder import TransformerEncoder

        self.encoder = TransformerEncoder.from_config(config)
        self.codecs = codecs
        if self.encoder.cache_id != cache_id or self.encoder.dim != codecs.book.dim:
            raise EncoderMismatchError(
                f"worker {socket.gethostname()} (pid {os.getpid()}) resolves the encoder to "
                f"{self.encoder.cache_id!r} (dim {self.encoder.dim}) but the run uses "
                f"{cache_id!r} (dim {codecs.book.dim}); install the same encoder (same "
                "weights) on every worker"
            )
        self.cache_id = cache_id
        logger.info("fingerprint actor ready: %s on %s", cache_id, socket.gethostname())

    def encode_texts(self, texts: list[str]) -> list[Any]:
        """Fingerprints of ``texts`` (one batched encoder pass)."""
        return self.encode(texts)

    def encode(self, texts: list[str]) -> list[Any]:
        """Fingerprints of ``texts``; override to change the encoding."""
        return self.encoder.encode_texts(texts)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Encode one batch: columns ``encoded`` (one EncodedDocument or None per row),
        ``error`` and ``id``/``key`` for the report."""
        docs = planned_rows(batch)
        result = encode_batch(self, docs, self.codecs)
        by_key: dict[str, list[Any]] = {}  # a key twice in the batch: each row its own names
        for enc in result.encoded:
            by_key.setdefault(enc.key, []).append(enc)
        errors = {f.key: f.error for f in result.failed}
        return {
            "id": object_column([d.id for d in docs]),
            "key": object_column([d.key for d in docs]),
            "encoded": object_column(
                [by_key[d.key].pop(0) if by_key.get(d.key) else None for d in docs]
            ),
            "error": object_column([errors.get(d.key, "") for d in docs]),
        }


def encode_in_task(
    actor_class: type[FingerprintActor],
    config: Any,
    cache_id: str,
    codecs: CodecSet,
    columns: dict[str, Any],
) -> dict[str, np.ndarray]:
    """One batch of :data:`INPUT_COLUMNS` encoded by a new ``actor_class`` instance (run as a
    Ray task): what an actor of the pool returns for it."""
    return actor_class(config, cache_id, codecs)(columns)


def check_config_shippable(config: Any) -> None:
    """Refuse a config whose encoder is a loaded model object (with a ConfigError): it would
    be pickled to every worker; workers load the model from their own disk instead."""
    if not isinstance(config.encoder_model, str):
        raise ConfigError(
            "distributed ingestion ships the encoder's id or path to the workers, which load it "
            f"themselves; got a loaded {type(config.encoder_model).__name__} object"
        )
