"""The one ingestion function: documents in, the store filled, one report out.

Every entry point calls :func:`ingest`; only the *runner* (where the encoder runs) differs.
**Plan**: documents keyed with the encoder's identity, duplicates folded, stored ones skipped
(their new names recorded).  **Train first**: an untrained codec gets a *sample* batch (the
leading documents, until ``train_min`` words; topped up when a failure left it short) whose write
trains it, so later batches are encoded with the trained codebook; a smaller input is stored in
float16 until staged words reach ``train_min``.  **Batches**: each is encoded by the runner and
written in one transaction; an interrupted run keeps committed batches, a re-run skips them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from semtoken_rag.errors import ConfigError, InvalidInputError, SemTokenError, StoreError
from semtoken_rag.ingestion.documents import (
    PlannedDocument,
    SourceDocument,
    as_documents,
    batches,
    plan_documents,
)
from semtoken_rag.ingestion.worker import BatchResult, FailedDocument, encode_batch
from semtoken_rag.inputs import check_part
from semtoken_rag.store.codebooks import CodecSet

logger = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")
#: What ingestion calls on its store (a :class:`~semtoken_rag.store.FingerprintStore`).
STORE_METHODS = ("contains", "add_names", "write", "codec_set")
#: What ingestion calls on its runner.
RUNNER_METHODS = ("identity", "plan", "encode")


@dataclass
class IngestReport:
    """What an ingestion did (also passed to ``on_commit`` after every batch).

    Attributes:
        documents: Distinct non-blank documents in the input.
        already_stored: Of those, found in the store before encoding (skipped).
        encoded: Newly encoded and committed so far.
        failed: Documents that could not be encoded (never stored).
        blank: Input documents with no text (nothing to store).
        words: Words encoded and committed.
        batches: Transactions committed.
        trained: Whether the store's codec was trained during this run.
        workers: Encoders that ran: 1 in process; on Ray the pool's size (1: one task; 0: none).
        cache_id: Encoder identity in the keys.
        seconds: Wall time of the run.
    """

    documents: int = 0
    already_stored: int = 0
    encoded: int = 0
    failed: list[FailedDocument] = field(default_factory=list)
    blank: int = 0
    words: int = 0
    batches: int = 0
    trained: bool = False
    workers: int = 1
    cache_id: str = ""
    seconds: float = 0.0

    @property
    def pending(self) -> int:
        """Documents neither stored nor failed (non-zero only while running or after a stop)."""
        return self.documents - self.already_stored - self.encoded - len(self.failed)


class DocumentEncodingError(SemTokenError):
    """A document failed to encode and ``on_error="raise"`` stopped the run (its batch committed).

    Attributes:
        failed: The failing document(s) of that batch.
        report: The run so far (everything in it is committed).
    """

    def __init__(self, failed: list[FailedDocument], report: IngestReport) -> None:
        first = failed[0]
        more = f" (and {len(failed) - 1} more in its batch)" if len(failed) > 1 else ""
        super().__init__(
            f"document {first.id!r} (key {first.key[:12]}…) failed to encode: {first.error}"
            f"{more}; stopped after committing {report.encoded} documents; a re-run skips them "
            "(use on_error='skip' / --on-error skip to go on past failures)"
        )
        self.failed = failed
        self.report = report


class Plan(Protocol):
    """What an ingestion will encode (by the runner: a list here, a Ray Dataset on a cluster)."""

    report: IngestReport

    def words(self) -> int:
        """Words left to encode (a lower bound where unknown)."""
        ...

    def take_sample(self, words: int) -> list[PlannedDocument]:
        """Remove and return the leading documents holding at least ``words`` words."""
        ...

    def encode(self, codecs: CodecSet, opts: IngestOptions) -> Iterator[BatchResult]:
        """Encode what is left, batch by batch."""
        ...


class Runner(Protocol):
    """Where the encoder runs: this process (:class:`LocalRunner`) or Ray actors."""

    workers: int

    def identity(self) -> tuple[str, int]:
        """``(cache_id, dim)`` of the encoder."""
        ...

    def plan(self, documents: Any, store: Any, cache_id: str) -> Plan:
        """Key the documents and skip the stored ones."""
        ...

    def encode(
        self, batches: Iterable[list[PlannedDocument]], codecs: CodecSet
    ) -> Iterator[BatchResult]:
        """Encode each batch (encoder, then ``codecs``)."""
        ...


class ListPlan:
    """The documents of an in-memory input, keyed; stored ones skipped (names recorded)."""

    def __init__(self, documents: Any, store: Any, cache_id: str, runner: Runner) -> None:
        planned, blank = plan_documents(as_documents(documents), cache_id)
        stored = store.contains([d.key for d in planned])
        named = {d.key: d.names for d in planned if d.key in stored and d.names}
        if named:
            store.add_names(named)
        self.report = IngestReport(
            documents=len(planned), already_stored=len(stored), blank=blank, cache_id=cache_id
        )
        self.todo = [d for d in planned if d.key not in stored]
        self.runner = runner

    def words(self) -> int:
        return sum(d.words for d in self.todo)

    def take_sample(self, words: int) -> list[PlannedDocument]:
        total = cut = 0
        while cut < len(self.todo) and total < words:
            total += self.todo[cut].words
            cut += 1
        sample, self.todo = self.todo[:cut], self.todo[cut:]
        return sample

    def encode(self, codecs: CodecSet, opts: IngestOptions) -> Iterator[BatchResult]:
        return self.runner.encode(batches(self.todo, opts.batch_size, opts.max_batch_words), codecs)


class LocalRunner:
    """The encoder of this process (a :class:`~semtoken_rag.protocols.FingerprintEncoder`)."""

    workers = 1

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def identity(self) -> tuple[str, int]:
        return str(self.encoder.cache_id), int(self.encoder.dim)

    def plan(self, documents: Any, store: Any, cache_id: str) -> Plan:
        return ListPlan(documents, store, cache_id, self)

    def encode(
        self, batches: Iterable[list[PlannedDocument]], codecs: CodecSet
    ) -> Iterator[BatchResult]:
        for batch in batches:
            yield encode_batch(self.encoder, batch, codecs)


@dataclass(frozen=True)
class IngestOptions:
    """How :func:`ingest` batches, reports and reacts to failures.

    Attributes:
        batch_size: Documents per encoder call and per store transaction.
        max_batch_words: A batch closes before exceeding this many words (bounds memory).
        on_error: ``"raise"`` stops at a failing document with :class:`DocumentEncodingError`
            (after committing the rest of its batch); ``"skip"`` reports it and goes on.
        progress: Show a progress bar (words).
        on_commit: Called with the report after every committed batch.
    """

    batch_size: int = 256
    max_batch_words: int = 65536
    on_error: str = "raise"
    progress: bool = True
    on_commit: Callable[[IngestReport], None] | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_batch_words"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.on_error, str) or self.on_error not in ON_ERROR:
            raise InvalidInputError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")
        if self.on_commit is not None and not callable(self.on_commit):
            raise InvalidInputError(
                f"on_commit must be callable or None, got {type(self.on_commit).__name__}"
            )


def ingest(
    documents: str | SourceDocument | Iterable[str | SourceDocument] | Any,
    store: Any,
    runner: Runner,
    options: IngestOptions | None = None,
) -> IngestReport:
    """Fingerprint documents into a store (see the module docstring for the steps).

    Args:
        documents: Texts or :class:`SourceDocument` objects (one ``str`` is one document);
            a Ray runner also takes a ``ray.data.Dataset``.
        runner: Where the encoder runs (:class:`LocalRunner`, or a Ray runner).

    Raises:
        InvalidInputError: bad documents or options (before anything is encoded).
        ConfigError: no store or runner, or one without the methods ingestion calls.
        StoreError: a read-only store, or a failed write (lock timeout, full disk).
        DocumentEncodingError: a document failed and ``on_error="raise"``.
        CodebookChangedError: the store's codec changed under the run (that batch is unwritten).
    """
    opts = _checked(store, runner, options)
    t0 = time.perf_counter()
    cache_id, dim = runner.identity()
    plan = runner.plan(documents, store, cache_id)
    report = plan.report
    from tqdm.auto import tqdm

    bar = tqdm(total=plan.words(), desc="fingerprints", unit="word", disable=not opts.progress)
    with bar:
        done: set[str] = set()  # keys committed or failed in this run
        codecs = store.codec_set(dim)
        untrained = not codecs.guard
        while 0 < codecs.to_train <= plan.words():
            bar.set_description("fingerprints (the sample that trains the codec)")
            logger.info("encoding a %d-word sample to train the codebook", codecs.to_train)
            for result in runner.encode([plan.take_sample(codecs.to_train)], codecs):
                _commit(result, store, report, opts, bar, t0, done)
            codecs = store.codec_set(dim)
        bar.set_description("fingerprints")
        for result in plan.encode(codecs, opts):
            _commit(result, store, report, opts, bar, t0, done)
    report.workers = runner.workers
    report.trained = untrained and _trained_at_end(store, dim, codecs, report)
    report.seconds = time.perf_counter() - t0
    logger.info(
        "ingested %d documents (%d words) in %.1f s; %d already stored, %d failed",
        report.encoded, report.words, report.seconds, report.already_stored, len(report.failed),
    )  # fmt: skip
    return report


def _trained_at_end(store: Any, dim: int, codecs: CodecSet, report: IngestReport) -> bool:
    """Whether the store's codec is trained at the end (a later write may have trained it); best
    effort: a busy or damaged store must not cost the report of a committed run."""
    if codecs.guard or not report.encoded:
        return codecs.guard
    try:
        return store.codec_set(dim).guard
    except StoreError as exc:
        logger.debug("trained state not read at the end of the run: %s", exc)
        return False


def _checked(store: Any, runner: Any, options: IngestOptions | None) -> IngestOptions:
    """The options of :func:`ingest`, once its store and runner are checked (errors as there)."""
    opts = IngestOptions() if options is None else options
    if not isinstance(opts, IngestOptions):
        raise InvalidInputError(f"options must be an IngestOptions, got {type(opts).__name__}")
    if store is None or runner is None:
        which = "store" if store is None else "runner"
        raise ConfigError(f"ingest needs a {which}, got None")
    check_part(store, "store", STORE_METHODS)
    check_part(runner, "runner", RUNNER_METHODS)
    if getattr(store, "read_only", False):
        raise StoreError(f"{store} is read-only: nothing can be ingested into it")
    return opts


def _commit(
    result: BatchResult,
    store: Any,
    report: IngestReport,
    opts: IngestOptions,
    bar: Any,
    t0: float,
    done: set[str],
) -> None:
    """Write one encoded batch (one transaction) and account for it: each document once, also
    when a dataset repeats it (a repeat only adds its names, which the write records)."""
    store.write(result.encoded)
    encoded = [d for d in {d.key: d for d in result.encoded}.values() if d.key not in done]
    failed = [f for f in {f.key: f for f in result.failed}.values() if f.key not in done]
    done.update(d.key for d in encoded)
    done.update(f.key for f in failed)
    words = sum(d.n_words for d in encoded)
    report.encoded += len(encoded)
    report.words += words
    report.failed.extend(failed)
    report.batches += 1
    report.seconds = time.perf_counter() - t0
    bar.update(words)
    for f in failed:
        logger.warning("document %s failed to encode: %s", f.id, f.error)
    if opts.on_commit is not None:
        opts.on_commit(report)
    if failed and opts.on_error == "raise":
        raise DocumentEncodingError(failed, report)
