"""The Ray Data worker of distributed ingestion: one encoder per actor, batches of chunks in,
word fingerprints out.

Why actors and not tasks: loading the encoder costs seconds (and GPU memory); a stateful actor
loads it once and encodes every batch it is given (Ray Data ``map_batches`` with an
``ActorPoolStrategy``).  Actors never touch the fingerprint store: the driver commits what they
return (see :mod:`semtoken_rag.distributed.ingest` for why).

A chunk the encoder cannot encode fails alone: the batch is retried chunk by chunk, the failing
chunk comes back with its error message (the ``error`` column) and the others are encoded, so
the driver can report exactly which input failed and go on or stop, as the user chose.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

import numpy as np

from semtoken_rag.errors import ConfigError, SemTokenError
from semtoken_rag.fingerprints import ChunkFingerprints

logger = logging.getLogger(__name__)

#: Columns an encoded batch carries back to the driver.
OUTPUT_COLUMNS = ("id", "key", "vectors", "word_spans", "error")


class EncoderMismatchError(SemTokenError):
    """A worker's encoder has another identity (weights, windows) than the run's keys."""


def encoder_identity(config: Any) -> dict[str, Any]:
    """Load the encoder as an actor would and describe it (run as a Ray task).

    Why: the store keys contain the encoder's ``cache_id`` (model, a digest of its weights,
    windows), which is only known once the model is loaded, and the model that counts is the
    one on the workers' disks, not the driver's.  The driver asks one worker first, so it can
    skip stored chunks before any encoding, and a worker without the model fails here, once,
    with a clear error.

    Returns:
        ``{"cache_id", "model_id", "device", "dim", "node"}``.
    """
    from semtoken_rag.encoder import TransformerEncoder

    enc = TransformerEncoder.from_config(config)
    return {
        "cache_id": enc.cache_id,
        "model_id": enc.model_id,
        "device": enc.device,
        "dim": enc.dim,
        "node": socket.gethostname(),
    }


def describe_error(exc: BaseException) -> str:
    """One line naming the exception class and its message."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:500]}"


def object_column(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``values`` (numpy would stack equal-shaped arrays into 3-d)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


class FingerprintActor:
    """Callable class for ``Dataset.map_batches``: encodes the ``text`` column of a batch.

    Args:
        config: The :class:`~semtoken_rag.SemTokenConfig` whose encoder fields are used
            (shipped to every actor; each loads the model from its own disk).
        cache_id: The encoder identity the run's keys were computed with; an actor that
            resolves to another one (other weights on its node, other window settings)
            refuses to start: its fingerprints would be stored under keys nobody asks for.

    Subclass and override :meth:`encode` to change how a list of texts is encoded.
    """

    def __init__(self, config: Any, cache_id: str | None = None) -> None:
        from semtoken_rag.encoder import TransformerEncoder

        self.encoder = TransformerEncoder.from_config(config)
        if cache_id is not None and self.encoder.cache_id != cache_id:
            raise EncoderMismatchError(
                f"worker {socket.gethostname()} (pid {os.getpid()}) resolves the encoder to "
                f"{self.encoder.cache_id!r} but the run's keys use {cache_id!r}; install "
                "the same encoder (same weights) on every worker"
            )
        logger.info(
            "fingerprint actor ready: %s on %s", self.encoder.cache_id, socket.gethostname()
        )

    def encode(self, texts: list[str]) -> list[ChunkFingerprints]:
        """Fingerprints of ``texts`` (one batched encoder pass)."""
        return self.encoder.encode_texts(texts)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Encode one batch (columns ``id``, ``key``, ``text``); see :data:`OUTPUT_COLUMNS`."""
        texts = list(batch["text"])
        fps, errors = self._encode_isolating(texts)
        dim = self.encoder.dim
        empty_vec = np.zeros((0, dim), dtype=np.float32)
        empty_spans = np.zeros((0, 2), dtype=np.int64)
        return {
            "id": np.asarray([str(x) for x in batch["id"]], dtype=object),
            "key": np.asarray([str(x) for x in batch["key"]], dtype=object),
            "vectors": object_column(
                [empty_vec if fp is None else np.ascontiguousarray(fp.vectors) for fp in fps]
            ),
            "word_spans": object_column(
                [empty_spans if fp is None else np.ascontiguousarray(fp.word_spans) for fp in fps]
            ),
            "error": np.asarray(errors, dtype=object),
        }

    def _encode_isolating(
        self, texts: list[Any]
    ) -> tuple[list[ChunkFingerprints | None], list[str]]:
        """Encode the batch; if that fails, chunk by chunk, so only failing chunks are lost."""
        out: list[ChunkFingerprints | None] = [None] * len(texts)
        errors = [
            "" if isinstance(t, str) else f"TypeError: chunk text is {type(t).__name__}, not str"
            for t in texts
        ]
        good = [i for i, e in enumerate(errors) if not e]
        if not good:
            return out, errors
        try:
            for i, fp in zip(good, self.encode([texts[i] for i in good]), strict=True):
                out[i] = fp
            return out, errors
        except Exception as exc:
            if len(good) == 1:
                errors[good[0]] = describe_error(exc)
                return out, errors
            logger.warning("batch of %d failed (%s); retrying chunk by chunk", len(good), exc)
        for i in good:
            try:
                out[i] = self.encode([texts[i]])[0]
            except Exception as exc:
                errors[i] = describe_error(exc)
        return out, errors


def check_config_shippable(config: Any) -> None:
    """Refuse a config whose encoder is a loaded model object.

    Raises:
        ConfigError: ``encoder_model`` is not an id or a path (a model object would be pickled
            to every worker; workers load the model from their own disk instead).
    """
    if not isinstance(config.encoder_model, str):
        raise ConfigError(
            "distributed ingestion ships the encoder's id or path to the workers, which load it "
            f"themselves; got a loaded {type(config.encoder_model).__name__} object"
        )
