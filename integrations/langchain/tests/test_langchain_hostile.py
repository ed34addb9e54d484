"""Hostile review of ``SemTokenCompressor``, round 2: what broke, pinned (real MiniLM).

``compression_ratio="auto"`` with ``budget_scope="per_document"`` and a blank document after the
others (a retriever returns such documents: an empty page, a whitespace-only split) failed with
an ``IndexError`` in the engine: the ``auto`` budget was shared only up to the last document
holding a sentence.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document

pytestmark = pytest.mark.slow

TEXTS = [
    "Krag leads Maskull north. The journey to Tormance takes many days.",
    "Nightspore waits at the tower. Maskull accepts the invitation from Krag.",
]


def _documents(tail: list[str]) -> list[Document]:
    texts = [*TEXTS, *tail]
    return [
        Document(page_content=t, id=f"d{i}", metadata={"source": f"s{i}", "rank": i})
        for i, t in enumerate(texts)
    ]


@pytest.mark.parametrize("tail", [[""], ["   \n"], ["", "\t"]])
@pytest.mark.parametrize("drop_empty", [True, False])
async def test_auto_per_document_with_blank_documents_last(
    make_compressor: Any, tail: list[str], drop_empty: bool
) -> None:
    comp = make_compressor(
        compression_ratio="auto", budget_scope="per_document", drop_empty=drop_empty
    )
    docs = _documents(tail)
    snapshot = [d.model_copy(deep=True) for d in docs]
    out = comp.compress_documents(docs, "Who invites Maskull?")
    assert docs == snapshot  # the input documents are never mutated
    by_id = {d.id: d for d in docs}
    assert [d.id for d in out] == sorted(d.id for d in out)  # input order
    if not drop_empty:
        assert [d.id for d in out] == [d.id for d in docs]
    for doc in out:
        src = by_id[doc.id]
        meta = dict(doc.metadata)
        sem = meta.pop("semtoken")
        assert meta == src.metadata and "budget_choice" in sem
        pieces = [src.page_content[s:e] for s, e in sem["offsets"]]
        assert " … ".join(pieces) == doc.page_content
        if not src.page_content.strip():
            assert doc.page_content == "" and sem["kept_tokens"] == 0
    again = await comp.acompress_documents(docs, "Who invites Maskull?")
    assert [(d.id, d.page_content) for d in again] == [(d.id, d.page_content) for d in out]
