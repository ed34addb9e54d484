"""What ingestion takes: documents (a text and the names it is known by), checked and keyed.

Names (LangChain ``metadata["source"]``, LlamaIndex ``ref_doc_id``) recorded at ingestion let the
store narrow its search for a chunk later (:class:`~semtoken_rag.fingerprints.ChunkSource`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

from semtoken_rag.core.segment import find_words
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import fingerprint_key
from semtoken_rag.inputs import model_text


@dataclass(frozen=True)
class SourceDocument:
    """A document to ingest.

    Attributes:
        text: Its full text (a pre-cut chunk is a short document).
        names: Names it is known by (a file path, ``Document.id``, ``metadata["source"]``,
            LlamaIndex ``doc_id``): chunks that carry one of them are looked up there first.
    """

    text: str
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidInputError(f"document text must be a str, got {type(self.text).__name__}")
        names = self.names
        bad = isinstance(names, (str, bytes, bytearray, Mapping)) or not isinstance(names, Iterable)
        if not bad and not isinstance(names, tuple):  # a list or another iterable: kept as a tuple
            names = tuple(names)
            object.__setattr__(self, "names", names)
        if bad or not all(isinstance(n, str) for n in names):
            raise InvalidInputError(f"document names must be a tuple of str, got {names!r:.80}")


@dataclass(frozen=True)
class PlannedDocument:
    """A document the ingestion will encode: a label for reports, its key, text and names."""

    id: str
    key: str
    text: str
    names: tuple[str, ...]
    words: int


def as_documents(documents: object) -> Iterator[SourceDocument]:
    """The input as :class:`SourceDocument` objects (one ``str`` is one document).

    Raises:
        InvalidInputError: an item that is neither a str nor a SourceDocument, or a mapping.
    """
    if isinstance(documents, (str, SourceDocument)):
        documents = [documents]
    elif isinstance(documents, (bytes, bytearray, Mapping)) or not isinstance(documents, Iterable):
        raise InvalidInputError(
            "documents must be a str, a SourceDocument or an iterable of them, got "
            f"{type(documents).__name__}"
        )
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            yield SourceDocument(doc)
        elif isinstance(doc, SourceDocument):
            yield doc
        else:
            raise InvalidInputError(
                f"document {i} is a {type(doc).__name__}, not a str or a SourceDocument"
            )


def plan_documents(
    documents: Iterable[SourceDocument], cache_id: str
) -> tuple[list[PlannedDocument], int]:
    """Distinct, non-blank documents keyed for ``cache_id``, in input order, and the blank count;
    a repeat's names are merged in one ordered set (linear in the repeats)."""
    planned: dict[str, PlannedDocument] = {}
    merged: dict[str, dict[str, None]] = {}  # key -> names, for texts given more than once
    blank = 0
    for i, doc in enumerate(documents):
        if not doc.text.strip():
            blank += 1
            continue
        key = fingerprint_key(doc.text, cache_id)
        old = planned.get(key)
        if old is not None:
            merged.setdefault(key, dict.fromkeys(old.names)).update(dict.fromkeys(doc.names))
            continue
        label = doc.names[0] if doc.names else str(i)
        words = len(find_words(model_text(doc.text)))
        planned[key] = PlannedDocument(label, key, doc.text, doc.names, words)
    out = [replace(d, names=tuple(merged[k])) if k in merged else d for k, d in planned.items()]
    return out, blank


def batches(
    docs: list[PlannedDocument], batch_size: int, max_words: int
) -> Iterator[list[PlannedDocument]]:
    """Consecutive batches of at most ``batch_size`` documents and about ``max_words`` words (a
    larger document alone): one encoder call and one transaction each, so memory stays bounded."""
    batch: list[PlannedDocument] = []
    words = 0
    for doc in docs:
        if batch and (len(batch) >= batch_size or words + doc.words > max_words):
            yield batch
            batch, words = [], 0
        batch.append(doc)
        words += doc.words
    if batch:
        yield batch
