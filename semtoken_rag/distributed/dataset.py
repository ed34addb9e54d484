"""Ingesting a ``ray.data.Dataset`` a user already has: the plan is made on the cluster.

A Ray Data stage computes each row's key, word count and name; only those reach the driver, which
checks them against the store.  The driver reads no text but the training sample (leading rows)."""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from semtoken_rag.core.segment import find_words
from semtoken_rag.distributed.actor import INPUT_COLUMNS
from semtoken_rag.errors import InvalidInputError, SemTokenError
from semtoken_rag.fingerprints import fingerprint_key
from semtoken_rag.ingestion.documents import PlannedDocument
from semtoken_rag.ingestion.run import IngestOptions, IngestReport
from semtoken_rag.ingestion.worker import BatchResult
from semtoken_rag.inputs import model_text
from semtoken_rag.store.codebooks import CodecSet

#: Rows read per driver-side batch of the key pass and of the sample.
_KEY_BATCH = 4096


#: The last line of a traceback that names one of the library's errors.
_OUR_ERROR = re.compile(r"^(semtoken_rag(?:\.\w+)*)\.(\w+): (.*)$", re.MULTILINE)


def remote_cause(ray: Any, exc: BaseException) -> BaseException:
    """The library error inside a Ray task error or a failed actor constructor (e.g.
    :class:`~semtoken_rag.distributed.actor.EncoderMismatchError`), else ``exc``."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, SemTokenError):
        return cause
    if isinstance(exc, ray.exceptions.RayActorError) and exc.actor_init_failed:
        # Ray keeps only the text of a constructor's error (ActorDiedError): rebuild ours.
        return _rebuilt(str(exc)) or exc
    return exc


def _rebuilt(text: str) -> SemTokenError | None:
    """The library error whose traceback ``text`` ends with, if any (one-message errors)."""
    found = _OUR_ERROR.findall(text)
    if not found:
        return None
    module, name, message = found[-1]
    with contextlib.suppress(ImportError, AttributeError, TypeError):
        cls = getattr(importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, SemTokenError):
            return cls(message)  # type: ignore[no-any-return]
    return None


def _row_key(text: Any, row_id: str, cache_id: str) -> str:
    """A row's document key: ``""`` for a blank text (nothing to store, counted as blank); for
    a row that is not text, a key no document can have (the actor reports the row)."""
    if not isinstance(text, str):
        return "!" + fingerprint_key(row_id, "")
    return fingerprint_key(text, cache_id) if text.strip() else ""


def _keys_stage(
    batch: dict[str, np.ndarray], cache_id: str, text_column: str, id_column: str | None
) -> dict[str, np.ndarray]:
    """Ray Data task: a user's rows as ``id``, ``key``, ``text``, ``names``, ``words``."""
    texts = list(batch[text_column])
    ids = [str(i) for i in batch[id_column]] if id_column else [repr(t)[:60] for t in texts]
    keys = [_row_key(t, i, cache_id) for t, i in zip(texts, ids, strict=True)]
    words = [len(find_words(model_text(t))) if isinstance(t, str) else 0 for t in texts]
    return {
        "id": np.asarray(ids, dtype=object),
        "key": np.asarray(keys, dtype=object),
        "text": np.asarray(texts, dtype=object),
        "names": np.asarray(ids if id_column else [""] * len(ids), dtype=object),
        "words": np.asarray(words, dtype=np.int64),
    }


def _drop_keys(
    batch: dict[str, np.ndarray], keys: np.ndarray, drop: bool = True
) -> dict[str, np.ndarray]:
    """Ray Data task: remove rows whose key is in ``keys`` (stored, in the sample, or blank),
    or (``drop=False``) keep only those."""
    keep = np.isin(np.asarray(batch["key"], dtype="S65"), keys) != drop
    return {name: col[keep] for name, col in batch.items() if name != "words"}


class DatasetPlan:
    """The plan of a Dataset input (see the module docstring)."""

    def __init__(self, runner: Any, ds: Any, store: Any, cache_id: str) -> None:
        text_column, id_column = runner.columns
        self.runner, self.store, self.named = runner, store, id_column is not None
        self._sampled: set[str] = set()
        self.keyed = ds.map_batches(
            _keys_stage,
            fn_kwargs={"cache_id": cache_id, "text_column": text_column, "id_column": id_column},
            batch_format="numpy",
        )
        seen: dict[str, int] = {}
        stored: set[str] = set()
        blank = 0
        for batch in self.keyed.select_columns(["key", "words", "names"]).iter_batches(
            batch_size=_KEY_BATCH, batch_format="numpy"
        ):
            keys = [str(k) for k in batch["key"]]
            blank += keys.count("")
            fresh = {k: int(w) for k, w in zip(keys, batch["words"], strict=True)
                     if k and k not in seen}  # fmt: skip
            seen.update(fresh)
            stored |= store.contains(list(fresh))
            # Every row of a stored document records its name, also a repeat in a later batch.
            named: dict[str, list[str]] = {}
            for k, n in zip(keys, batch["names"], strict=True):
                if k in stored and n:
                    named.setdefault(k, []).append(str(n))
            if named:
                store.add_names(named)
        self.report = IngestReport(documents=len(seen), already_stored=len(stored), blank=blank,
                                   cache_id=cache_id)  # fmt: skip
        self._words = sum(w for k, w in seen.items() if k not in stored)
        self._skip = stored | {""}

    @staticmethod
    def check(ds: Any, text_column: str, id_column: str | None) -> None:
        """Refuse a dataset without the named columns, before any worker starts."""
        names = ds.columns() or []
        for col in (text_column, id_column):
            if col is not None and col not in names:
                raise InvalidInputError(f"the dataset has no {col!r} column (columns: {names})")

    def _todo(self) -> Any:
        keys = np.asarray(sorted(self._skip), dtype="S65")
        return self.keyed.map_batches(_drop_keys, fn_kwargs={"keys": keys}, batch_format="numpy")

    def words(self) -> int:
        return self._words

    def take_sample(self, words: int) -> list[PlannedDocument]:
        out: list[PlannedDocument] = []
        total = 0
        for batch in self._todo().iter_batches(batch_size=_KEY_BATCH, batch_format="numpy"):
            for i, k, t, n in zip(*(batch[c] for c in INPUT_COLUMNS), strict=True):
                if total >= words:
                    break
                if str(k) in self._sampled:  # a repeat: named with the others by _name_sample
                    continue
                self._sampled.add(str(k))
                out.append(PlannedDocument(str(i), str(k), t, (str(n),) if n else (), 0))
                total += len(find_words(model_text(t))) if isinstance(t, str) else 0
            if total >= words:
                break
        self._skip |= {d.key for d in out}
        self._words -= total
        return out

    def encode(self, codecs: CodecSet, opts: IngestOptions) -> Iterator[BatchResult]:
        self._name_sample()
        return self.runner.map(self._todo(), codecs, opts.batch_size)  # type: ignore[no-any-return]

    def _name_sample(self) -> None:
        """Record every row's id of the stored sample (the run drops their other rows by key, so a
        repeat's id would be lost)."""
        if not (self.named and self._sampled):
            return
        keys = np.asarray(sorted(self._sampled), dtype="S65")
        rows = self.keyed.map_batches(
            _drop_keys, fn_kwargs={"keys": keys, "drop": False}, batch_format="numpy"
        )
        named: dict[str, list[str]] = {}
        for batch in rows.select_columns(["key", "names"]).iter_batches(
            batch_size=_KEY_BATCH, batch_format="numpy"
        ):
            for k, n in zip(batch["key"], batch["names"], strict=True):
                if n:
                    named.setdefault(str(k), []).append(str(n))
        self.store.add_names(named)
        self._sampled = set()
