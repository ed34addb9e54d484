"""Distributed ingestion: Ray Data actors encode, the driver commits to the fingerprint store.

Design (why the driver writes, not the actors):

* The store is SQLite in WAL mode plus a FAISS file; WAL must not live on a network file
  system, and one store is what query time reads.  So every fingerprint has to end up in one
  local directory anyway.  Actors only encode; their fingerprints travel back as numpy arrays
  through Ray's object store, and the driver streams them (``iter_batches``) into the store
  with :meth:`FingerprintStore.put_many`, **one transaction per batch**.
* Every guarantee of the store is kept because only its public API writes: a killed actor
  loses nothing committed (Ray restarts it and retries its batch), a killed driver loses at
  most the batch in flight, and a re-run skips what is stored (:meth:`contains_many` before
  anything is encoded).  There are no shards, so there is no half-written shard to mistake
  for a valid one, and the store never holds anything but its own format (no pickles: Ray may
  pickle its task data, the store receives arrays).
* A chunk that fails to encode is isolated by the actor (see
  :mod:`semtoken_rag.distributed.actor`) and reported by id; ``on_error`` chooses between
  going on (``"skip"``) and stopping after committing the rest of that batch (``"raise"``).

Nothing here schedules or queues: Ray Data's ``map_batches`` with an ``ActorPoolStrategy``
does the distribution, back-pressure and retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semtoken_rag.distributed.actor import (
    FingerprintActor,
    check_config_shippable,
    encoder_identity,
)
from semtoken_rag.distributed.cluster import fit_actors, ray_session
from semtoken_rag.errors import InvalidInputError, SemTokenError
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key

if TYPE_CHECKING:
    from semtoken_rag.config import SemTokenConfig
    from semtoken_rag.store import FingerprintStore

logger = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")
#: Keys checked against the store per query of the pre-pass over a Ray Dataset.
_KEY_BATCH = 4096


@dataclass(frozen=True)
class FailedChunk:
    """A chunk a worker could not encode (never stored; a re-run tries it again)."""

    id: str
    key: str
    error: str


@dataclass
class IngestReport:
    """What a distributed ingestion did (also passed to ``on_commit`` after every batch).

    Attributes:
        chunks: Distinct chunks in the input (duplicates of a text count once).
        already_stored: Of those, found in the store before encoding (skipped).
        encoded: Newly encoded and committed so far.
        failed: Chunks whose encoding failed on a worker.
        batches: Transactions committed.
        actors: Size of the actor pool.
        cache_id: Encoder identity in the keys.
        seconds: Wall time from the first request to Ray to the last commit.
    """

    chunks: int = 0
    already_stored: int = 0
    encoded: int = 0
    failed: list[FailedChunk] = field(default_factory=list)
    batches: int = 0
    actors: int = 0
    cache_id: str = ""
    seconds: float = 0.0

    @property
    def pending(self) -> int:
        """Chunks neither stored nor failed (non-zero only while running or after a stop)."""
        return self.chunks - self.already_stored - self.encoded - len(self.failed)


class ChunkEncodingError(SemTokenError):
    """A chunk failed to encode on a worker and ``on_error="raise"`` stopped the run.

    Attributes:
        failed: The failing chunk(s) of the batch that stopped the run.
        report: The run so far (everything in it is committed).
    """

    def __init__(self, failed: list[FailedChunk], report: IngestReport) -> None:
        first = failed[0]
        more = f" (and {len(failed) - 1} more in its batch)" if len(failed) > 1 else ""
        super().__init__(
            f"chunk {first.id!r} (key {first.key[:12]}…) failed to encode on a worker: "
            f"{first.error}{more}; stopped after committing {report.encoded} chunks; a re-run "
            "skips them (use on_error='skip' / --on-error skip to go on past failures)"
        )
        self.failed = failed
        self.report = report


def _check_args(
    actors: int, gpus_per_actor: float, cpus_per_actor: float, batch_size: int, on_error: str
) -> None:
    if not isinstance(actors, int) or actors < 1:
        raise InvalidInputError(f"actors must be a positive integer, got {actors!r}")
    if gpus_per_actor < 0:
        raise InvalidInputError(f"gpus_per_actor must be >= 0, got {gpus_per_actor!r}")
    if cpus_per_actor <= 0:
        raise InvalidInputError(f"cpus_per_actor must be > 0, got {cpus_per_actor!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if on_error not in ON_ERROR:
        raise InvalidInputError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def _remote_cause(ray: Any, exc: BaseException) -> BaseException:
    """The library error inside a Ray task error (so callers see our typed error)."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, SemTokenError):
        return cause
    return exc


def _keys_stage(
    batch: dict[str, np.ndarray], cache_id: str, text_column: str, id_column: str | None
) -> dict[str, np.ndarray]:
    """Ray Data task: normalise a user's dataset to ``id``, ``text``, ``key`` columns."""
    texts = batch[text_column]
    # Without an id column a chunk is named by its first characters (row numbers are not
    # known inside a batch).
    ids = batch[id_column] if id_column else [repr(t)[:60] for t in texts]
    # A row that is not text gets a key no chunk can have; the actor reports the row.
    keys = [
        fingerprint_key(t, cache_id)
        if isinstance(t, str)
        else "!" + fingerprint_key(repr(i), "")[1:]
        for t, i in zip(texts, ids, strict=True)
    ]
    return {
        "id": np.asarray([str(i) for i in ids], dtype=object),
        "text": np.asarray(list(texts), dtype=object),
        "key": np.asarray(keys, dtype=object),
    }


def _drop_stored(batch: dict[str, np.ndarray], stored: np.ndarray) -> dict[str, np.ndarray]:
    """Ray Data task: remove rows whose key was found in the store by the pre-pass."""
    if not len(stored):
        return batch
    keep = ~np.isin(np.asarray(batch["key"], dtype="S64"), stored)
    return {name: col[keep] for name, col in batch.items()}


def check_input(
    ray: Any,
    chunks: Sequence[str] | Any,
    ids: Sequence[str] | None,
    text_column: str,
    id_column: str | None,
) -> Any:
    """Refuse bad input before any worker starts.

    Returns:
        The dataset, or the chunks as a list (an iterator is read once, here).

    Raises:
        InvalidInputError: a chunk that is not a string, ids of another length, a dataset
            without the named columns.
    """
    if isinstance(chunks, ray.data.Dataset):
        names = chunks.columns() or []
        for col in (text_column, id_column):
            if col is not None and col not in names:
                raise InvalidInputError(f"the dataset has no {col!r} column (columns: {names})")
        return chunks
    if isinstance(chunks, str):
        raise InvalidInputError("chunks must be a sequence of strings, got one string")
    texts = list(chunks)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InvalidInputError(f"chunk {i} is a {type(t).__name__}, not a string")
    if ids is not None and len(ids) != len(texts):
        raise InvalidInputError(f"{len(ids)} ids for {len(texts)} chunks")
    return texts


def _plan_texts(
    texts: Sequence[str], ids: Sequence[str] | None, cache_id: str, store: FingerprintStore
) -> tuple[list[dict[str, str]], IngestReport]:
    """Driver-side plan for in-memory chunks: keys, duplicates folded, stored ones skipped."""
    rows: dict[str, dict[str, str]] = {}
    for i, t in enumerate(texts):
        key = fingerprint_key(t, cache_id)
        rows.setdefault(
            key, {"id": str(ids[i]) if ids is not None else str(i), "key": key, "text": t}
        )
    present = store.contains_many(list(rows))
    todo = [r for k, r in rows.items() if k not in present]
    return todo, IngestReport(chunks=len(rows), already_stored=len(present), cache_id=cache_id)


def _plan_dataset(
    ds: Any, cache_id: str, store: FingerprintStore, text_column: str, id_column: str | None
) -> tuple[Any, IngestReport]:
    """Plan for a Ray Dataset: a key pass (keys only reach the driver), stored ones dropped."""
    keyed = ds.map_batches(
        _keys_stage,
        fn_kwargs={"cache_id": cache_id, "text_column": text_column, "id_column": id_column},
        batch_format="numpy",
    )
    seen: set[str] = set()
    stored: set[str] = set()
    for batch in keyed.select_columns(["key"]).iter_batches(
        batch_size=_KEY_BATCH, batch_format="numpy"
    ):
        keys = [str(k) for k in batch["key"] if str(k) not in seen]
        seen.update(keys)
        stored |= store.contains_many(keys)
    stored_arr = np.asarray(sorted(stored), dtype="S64")
    todo = keyed.map_batches(_drop_stored, fn_kwargs={"stored": stored_arr}, batch_format="numpy")
    return todo, IngestReport(chunks=len(seen), already_stored=len(stored), cache_id=cache_id)


def _fingerprints(batch: dict[str, np.ndarray]) -> Iterator[tuple[str, str, Any, Any, str]]:
    yield from zip(
        batch["id"],
        batch["key"],
        batch["vectors"],
        batch["word_spans"],
        batch["error"],
        strict=True,
    )


def ray_ingest(
    chunks: Sequence[str] | Any,
    store: FingerprintStore | str | Path,
    *,
    config: SemTokenConfig | None = None,
    ids: Sequence[str] | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    actors: int = 1,
    gpus_per_actor: float = 0.0,
    cpus_per_actor: float = 1.0,
    batch_size: int = 64,
    on_error: str = "raise",
    address: str | None = None,
    connect_timeout: float = 10.0,
    progress: bool = False,
    on_commit: Callable[[IngestReport], None] | None = None,
    actor_class: type[FingerprintActor] = FingerprintActor,
) -> IngestReport:
    """Fingerprint chunks on a Ray cluster into a fingerprint store (ingestion at scale).

    Args:
        chunks: Chunk texts (exactly as they will be compressed), or a ``ray.data.Dataset``
            with a ``text_column`` (e.g. from ``ray.data.read_json``).
        store: An open :class:`~semtoken_rag.store.FingerprintStore` (its codec and limits
            apply) or a directory (opened, and closed at the end).  It lives on the driver's
            local disk.
        config: Engine configuration; only the encoder fields matter (default config if
            omitted).  ``encoder_model`` must be an id or a path every worker can load.
        ids: Names of the chunks for error reports (default: their index).
        text_column: Text column of a Dataset input.
        id_column: Id column of a Dataset input (default: the row number).
        actors: Encoder actors (each loads the model once).
        gpus_per_actor: GPUs reserved per actor (fractions share a GPU); 0 for CPU actors.
        cpus_per_actor: CPUs reserved per actor (Ray caps its torch threads to this).
        batch_size: Chunks per actor call, and per store transaction.
        on_error: ``"raise"`` stops at the first chunk that fails to encode (after committing
            the rest of its batch) with :class:`ChunkEncodingError`; ``"skip"`` reports it in
            ``IngestReport.failed`` and goes on.
        address: Ray address (see :func:`~semtoken_rag.distributed.cluster.ray_session`);
            ignored when Ray is already initialised in this process.
        connect_timeout: Seconds to wait for an explicit address to answer.
        progress: Show a progress bar over chunks.
        on_commit: Called with the report after each committed batch.
        actor_class: The map_batches worker (a :class:`FingerprintActor` subclass).

    Returns:
        The :class:`IngestReport`.

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'semtoken-rag[ray]'``).
        RayConnectionError: ``address`` does not answer.
        ChunkEncodingError: a chunk failed and ``on_error="raise"``.
        InvalidInputError: bad arguments, or no actor fits in the cluster.
    """
    from semtoken_rag.config import SemTokenConfig

    _check_args(actors, gpus_per_actor, cpus_per_actor, batch_size, on_error)
    config = config or SemTokenConfig()
    check_config_shippable(config)
    t0 = time.perf_counter()
    with ExitStack() as stack:
        ray = stack.enter_context(ray_session(address, connect_timeout=connect_timeout))
        chunks = check_input(ray, chunks, ids, text_column, id_column)
        if isinstance(store, (str, Path)):
            from semtoken_rag.store import FingerprintStore

            store = stack.enter_context(FingerprintStore(store))
        n_actors = fit_actors(ray, actors, cpus_per_actor, gpus_per_actor)
        resources = {
            "num_cpus": cpus_per_actor,
            **({"num_gpus": gpus_per_actor} if gpus_per_actor else {}),
        }
        try:
            ident = ray.get(ray.remote(**resources)(encoder_identity).remote(config))
        except ray.exceptions.RayError as exc:
            raise _remote_cause(ray, exc) from exc
        cache_id = str(ident["cache_id"])
        if isinstance(chunks, ray.data.Dataset):
            todo_ds, report = _plan_dataset(chunks, cache_id, store, text_column, id_column)
            n_todo = report.chunks - report.already_stored
        else:
            rows, report = _plan_texts(chunks, ids, cache_id, store)
            n_todo = len(rows)
            todo_ds = ray.data.from_items(rows) if rows else None
        report.actors = n_actors
        logger.info(
            "ray ingest: %d chunks, %d stored already, %d to encode on %d actors (%s)",
            report.chunks,
            report.already_stored,
            n_todo,
            n_actors,
            cache_id,
        )
        if todo_ds is not None and n_todo:
            encoded = todo_ds.map_batches(
                actor_class,
                fn_constructor_kwargs={"config": config, "cache_id": cache_id},
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=n_actors),
                **resources,
            )
            _commit_stream(ray, encoded, store, report, on_error, progress, on_commit, n_todo, t0)
    report.seconds = time.perf_counter() - t0
    logger.info(
        "ray ingest: %d encoded, %d failed in %.1f s",
        report.encoded,
        len(report.failed),
        report.seconds,
    )
    return report


def _commit_stream(
    ray: Any,
    encoded: Any,
    store: FingerprintStore,
    report: IngestReport,
    on_error: str,
    progress: bool,
    on_commit: Callable[[IngestReport], None] | None,
    total: int,
    t0: float,
) -> None:
    """Driver loop: each batch the actors return is one ``put_many`` transaction."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="fingerprints", unit="chunk", disable=not progress)
    batches = iter(encoded.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2))
    try:
        for batch in batches:
            items: list[tuple[str, ChunkFingerprints]] = []
            failed: list[FailedChunk] = []
            for cid, key, vec, spans, err in _fingerprints(batch):
                if err:
                    failed.append(FailedChunk(str(cid), str(key), str(err)))
                else:
                    fp = ChunkFingerprints(
                        np.asarray(vec, dtype=np.float32), np.asarray(spans, dtype=np.int64)
                    )
                    items.append((str(key), fp))
            store.put_many(items)
            report.encoded += len(items)
            report.failed.extend(failed)
            report.batches += 1
            report.seconds = time.perf_counter() - t0
            bar.update(len(items) + len(failed))
            for f in failed:
                logger.warning("chunk %s failed to encode: %s", f.id, f.error)
            if on_commit is not None:
                on_commit(report)
            if failed and on_error == "raise":
                raise ChunkEncodingError(failed, report)
    except ray.exceptions.RayError as exc:
        raise _remote_cause(ray, exc) from exc
    finally:
        bar.close()
        close = getattr(batches, "close", None)
        if close is not None:  # stop Ray Data's execution now, not when garbage-collected
            close()
