"""Workloads for the benchmarks, built from the shared evaluation data (never copied).

A workload of ``N`` tokens is a list of chunks: whole NarrativeQA summaries (L-Eval texts when
NarrativeQA is absent) in file order from a start document, the last one cut at a token
boundary so the total is exactly ``N`` tokens in the given tokenizer.  The question is the
start document's own, so the answer is in the context; other questions of the data serve as
"fresh" queries (never seen by the compressor's query memo).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semtoken_rag.errors import InvalidInputError

#: Default data root: ``../shared/data`` next to the repository.
DEFAULT_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
_SOURCES = ("narrativeqa/test.jsonl", "leval/scientific_qa.jsonl", "leval/tpo.jsonl")


@dataclass(frozen=True)
class Doc:
    """One distinct context with one of its questions."""

    context: str
    question: str


@dataclass(frozen=True)
class Workload:
    """One benchmark input.

    Attributes:
        chunks: Chunk texts (whole documents, the last one cut).
        question: The start document's question.
        tokens: Tokens of all chunks in the tokenizer the workload was cut with.
        fresh_questions: Other questions, for compressions with a never-seen query.
    """

    chunks: tuple[str, ...]
    question: str
    tokens: int
    fresh_questions: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(self.chunks)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_docs(data_dir: Path | None = None) -> list[Doc]:
    """Distinct contexts (first question of each) from the first data file that exists.

    Raises:
        InvalidInputError: no known data file under ``data_dir``.
    """
    root = Path(data_dir) if data_dir is not None else DEFAULT_DATA
    for rel in _SOURCES:
        path = root / rel
        if path.is_file():
            seen: dict[str, Doc] = {}
            for row in _rows(path):
                ctx = row.get("context") or ""
                if ctx and ctx not in seen:
                    seen[ctx] = Doc(ctx, str(row.get("question") or ""))
            if seen:
                return list(seen.values())
    raise InvalidInputError(f"no benchmark data under {root} (looked for {', '.join(_SOURCES)})")


def build_workload(tokenizer: Any, docs: list[Doc], n_tokens: int, start: int = 0) -> Workload:
    """Whole documents from ``docs[start:]`` (cycling) until exactly ``n_tokens`` tokens.

    The last document is cut at the character end of its last fitting token (offsets, not
    ``decode``: an uncased tokenizer would lowercase the text).

    Args:
        tokenizer: A fast Hugging Face tokenizer (offsets needed).
        docs: From :func:`load_docs`.
        n_tokens: Target size in that tokenizer's tokens (special tokens excluded).
        start: First document.
    """
    if not docs:
        raise InvalidInputError("no documents to build a workload from")
    chunks: list[str] = []
    total, i = 0, start
    while total < n_tokens:
        text = docs[i % len(docs)].context
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        n = len(enc["input_ids"])
        room = n_tokens - total
        if n > room:
            text = text[: int(enc["offset_mapping"][room - 1][1])]
            n = room
        chunks.append(text)
        total += n
        i += 1
    fresh = tuple(docs[(start + 1 + j) % len(docs)].question for j in range(min(len(docs) - 1, 64)))
    return Workload(tuple(chunks), docs[start % len(docs)].question, total, fresh)
