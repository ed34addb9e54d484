"""Distributed ingestion: Ray actors encode and apply the store's codec, the driver writes.

It is :func:`semtoken_rag.ingestion.ingest` with a Ray runner.  The driver writes because the store
is SQLite in WAL mode on its local disk (not on a network file system); actors return codes (64
bytes per word with ``pq64``), so they add throughput up to SQLite's insert rate.  Ray Data's
``map_batches`` (``ActorPoolStrategy``) does the distribution, back-pressure and retries."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semtoken_rag.distributed.actor import (
    FingerprintActor,
    check_config_shippable,
    document_columns,
    encode_in_task,
    encoder_identity,
)
from semtoken_rag.distributed.cluster import fit_actors, ray_session
from semtoken_rag.distributed.dataset import DatasetPlan, remote_cause
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.ingestion import IngestOptions, IngestReport, ingest
from semtoken_rag.ingestion.documents import PlannedDocument, SourceDocument, as_documents
from semtoken_rag.ingestion.run import ListPlan, Plan
from semtoken_rag.ingestion.worker import BatchResult, FailedDocument
from semtoken_rag.inputs import check_number
from semtoken_rag.store.codebooks import CodecSet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayOptions:
    """Where and how big the actor pool is.

    Attributes:
        actors: Encoder actors (each loads the model once); capped at what the cluster holds.
        gpus_per_actor: GPUs reserved per actor (fractions share a GPU); 0 for CPU actors.
        cpus_per_actor: CPUs reserved per actor (Ray caps its torch threads to this).
        address: Ray address (see :func:`~semtoken_rag.distributed.cluster.ray_session`);
            ignored when Ray is already initialised in this process.
        connect_timeout: Seconds an explicit address gets to answer.
    """

    actors: int = 1
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    address: str | None = None
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.actors, bool) or not isinstance(self.actors, int) or self.actors < 1:
            raise InvalidInputError(f"actors must be a positive integer, got {self.actors!r}")
        for name in ("gpus_per_actor", "cpus_per_actor", "connect_timeout"):  # kept as floats
            value = check_number(getattr(self, name), name, 0.0, open_low=name != "gpus_per_actor")
            object.__setattr__(self, name, value)
        if self.address is not None and not isinstance(self.address, str):
            raise InvalidInputError(
                f"address must be a str such as '10.0.0.5:6379' or None, got {self.address!r:.60}"
            )

    @property
    def resources(self) -> dict[str, float]:
        """``map_batches`` / ``ray.remote`` resource arguments of one actor."""
        gpus = {"num_gpus": self.gpus_per_actor} if self.gpus_per_actor else {}
        return {"num_cpus": self.cpus_per_actor, **gpus}


class RayRunner:
    """Ray actors as the ingestion's encoders (one batch, such as the training sample, is one Ray
    task): ``ray`` is an initialised session's module, ``actor_class`` the ``map_batches`` worker
    (a :class:`FingerprintActor`), ``columns`` a Dataset's text and id columns."""

    def __init__(
        self,
        ray: Any,
        config: Any,
        options: RayOptions,
        actor_class: type = FingerprintActor,
        columns: tuple[str, str | None] = ("text", None),
    ) -> None:
        self.ray, self.config, self.options, self.actor_class = ray, config, options, actor_class
        self.columns = columns
        self.pool_size = fit_actors(ray, options.actors, options.cpus_per_actor,
                                    options.gpus_per_actor)  # fmt: skip
        self.workers = 0  # encoders that ran: 1 for a task, the pool's size once it ran
        try:
            probe = ray.remote(**options.resources)(encoder_identity)
            self.cache_id, self.dim = ray.get(probe.remote(config))
        except ray.exceptions.RayError as exc:
            raise remote_cause(ray, exc) from exc

    def identity(self) -> tuple[str, int]:
        return self.cache_id, self.dim

    def plan(self, documents: Any, store: Any, cache_id: str) -> Plan:
        if isinstance(documents, self.ray.data.Dataset):
            return DatasetPlan(self, documents, store, cache_id)
        return ListPlan(documents, store, cache_id, self)

    def encode(
        self, batches: Iterable[list[PlannedDocument]], codecs: CodecSet
    ) -> Iterator[BatchResult]:
        todo = [b for b in batches if b]
        if len(todo) <= 1:  # the sample that trains the codec, or a small input
            return iter([self._encode_one(b, codecs) for b in todo])
        import pandas as pd

        # A DataFrame per batch is a block, and batch_size=None gives a block to one actor call:
        # the plan's batches (transactions) stay.  Object dtype: Arrow refuses lone surrogates.
        frames = [pd.DataFrame(document_columns(b), dtype=object) for b in todo]
        source = self.ray.data.from_pandas(frames)
        # Committed in the plan's order, as in one process: a codec trains on the same documents,
        # and a stopped run committed a prefix.  (The context is this dataset's own copy.)
        source.context.execution_options.preserve_order = True
        return self.map(source, codecs, None)

    def _encode_one(self, batch: list[PlannedDocument], codecs: CodecSet) -> BatchResult:
        """One batch as one Ray task: an actor pool would start every actor (each loading the
        model) and Ray Data's executor for one call (the training sample of a first ingestion)."""
        task = self.ray.remote(**self.options.resources)(encode_in_task)
        self.workers = max(self.workers, 1)
        try:
            columns = task.remote(
                self.actor_class, self.config, self.cache_id, codecs, document_columns(batch)
            )
            return batch_result(self.ray.get(columns))
        except self.ray.exceptions.RayError as exc:
            raise remote_cause(self.ray, exc) from exc

    def map(self, ds: Any, codecs: CodecSet, batch_size: int | None) -> Iterator[BatchResult]:
        """Run the actor pool over a dataset of documents; one result per actor call."""
        self.workers = self.pool_size
        encoded = ds.map_batches(
            self.actor_class,
            fn_constructor_kwargs={"config": self.config, "cache_id": self.cache_id,
                                   "codecs": codecs},
            batch_size=batch_size,
            batch_format="numpy",
            compute=self.ray.data.ActorPoolStrategy(size=self.pool_size),
            **self.options.resources,
        )  # fmt: skip
        return _results(self.ray, encoded)


def batch_result(batch: Mapping[str, Any]) -> BatchResult:
    """The :class:`BatchResult` of an actor call's columns (``id``, ``key``, ``encoded``,
    ``error``: :meth:`FingerprintActor.__call__`)."""
    result = BatchResult()
    for cid, key, doc, err in zip(batch["id"], batch["key"], batch["encoded"], batch["error"],
                                  strict=True):  # fmt: skip
        if doc is not None:
            result.encoded.append(doc)
        else:
            result.failed.append(FailedDocument(str(cid), str(key), str(err)))
    return result


def _results(ray: Any, encoded: Any) -> Iterator[BatchResult]:
    """Encoded batches as they arrive (one actor call each), Ray errors unwrapped."""
    batches = iter(encoded.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2))
    try:
        for batch in batches:
            yield batch_result(batch)
    except ray.exceptions.RayError as exc:
        raise remote_cause(ray, exc) from exc
    finally:
        close = getattr(batches, "close", None)
        if close is not None:  # stop Ray Data's execution now, not when garbage-collected
            close()


def _listed(documents: Any) -> Any:
    """A list, tuple, iterator or single document as checked :class:`SourceDocument` objects,
    refused before Ray starts; anything else (a ``ray.data.Dataset``) as it is.

    Raises:
        InvalidInputError: see :func:`~semtoken_rag.ingestion.documents.as_documents`.
    """
    plain = (str, bytes, bytearray, Mapping, SourceDocument, list, tuple, Iterator)
    if isinstance(documents, plain) or not isinstance(documents, Iterable):
        return list(as_documents(documents))
    return documents


def ray_ingest(
    documents: Any,
    store: Any,
    *,
    config: Any = None,
    ray: RayOptions | None = None,
    options: IngestOptions | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    actor_class: type = FingerprintActor,
) -> IngestReport:
    """Fingerprint documents on a Ray cluster into a store (ingestion at scale).

    Args:
        documents: Texts or :class:`~semtoken_rag.ingestion.SourceDocument` objects, or a
            ``ray.data.Dataset`` with a ``text_column`` (e.g. from ``ray.data.read_json``).
        store: An open :class:`~semtoken_rag.store.FingerprintStore` (its codec and limits
            apply), a directory, or a function returning a store (opened once the workers have
            loaded the encoder, closed at the end); it lives on the driver's local disk.
        config: Engine configuration; its ``encoder_model`` an id or path every worker can load.
        id_column: Id column of a Dataset input (recorded as the document's name).

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'semtoken-rag[ray]'``).
        RayConnectionError: the address does not answer.
        DocumentEncodingError: a document failed and ``on_error="raise"``.
        InvalidInputError: bad arguments, or no actor fits in the cluster.
    """
    from semtoken_rag.config import SemTokenConfig

    pool = RayOptions() if ray is None else ray
    opts = IngestOptions() if options is None else options
    if not isinstance(pool, RayOptions):  # refused here, not once the workers loaded the model
        raise InvalidInputError(f"ray must be a RayOptions, got {type(pool).__name__}")
    if not isinstance(opts, IngestOptions):
        raise InvalidInputError(f"options must be an IngestOptions, got {type(opts).__name__}")
    config = config or SemTokenConfig()
    check_config_shippable(config)
    documents = _listed(documents)
    with ExitStack() as stack:
        module = stack.enter_context(
            ray_session(pool.address, connect_timeout=pool.connect_timeout)
        )
        if isinstance(documents, module.data.Dataset):
            DatasetPlan.check(documents, text_column, id_column)
        runner = RayRunner(module, config, pool, actor_class, (text_column, id_column))
        if isinstance(store, (str, Path)):
            from semtoken_rag.store import FingerprintStore

            store = stack.enter_context(FingerprintStore(store))
        elif callable(store):
            store = stack.enter_context(store())
        return ingest(documents, store, runner, opts)
