"""A reusable contract for LangChain document compressors, in the style of ``langchain-tests``.

Subclass :class:`DocumentCompressorContract` in a ``Test*`` class and provide the properties;
pytest then runs every contract test on your compressor.  Properties (not fixtures) keep the
suite framework-agnostic; a subclass may set attributes from its own fixtures in an autouse
fixture and read them in the properties.

What the contract asks of any compressor (beyond returning ``Document`` objects):
empty input gives empty output; output documents come from the input (by id) in input order;
their original metadata survives; inputs are never mutated; unicode and duplicates are fine;
``acompress_documents`` returns what ``compress_documents`` returns; and, when the compressor
declares a token budget, the output fits it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from langchain_core.documents import BaseDocumentCompressor, Document

UNICODE_TEXTS = [
    "Zoë and Renée crossed the Øresund bridge at dawn. Their café in Malmö opened at noon.",
    "東京タワーは1958年に完成した。高さは333メートルである。多くの観光客が訪れる。",
    "Le garçon a mangé une crème brûlée. Ensuite, il a lu « Les Misérables » à voix haute.",
    "The rocket 🚀 launched at 09:30. Engineers cheered 🎉 when the second stage separated.",
    "قرأ الطالب الكتاب في المكتبة. ثم كتب ملخصا قصيرا عن الفصل الأول.",
]


class DocumentCompressorContract:
    """Contract tests for a ``BaseDocumentCompressor``; subclass and fill in the properties."""

    @property
    def compressor(self) -> BaseDocumentCompressor:
        """The compressor under test (a fresh or shared instance)."""
        raise NotImplementedError

    @property
    def documents(self) -> list[Document]:
        """Several related documents with distinct ids and some metadata (real text)."""
        raise NotImplementedError

    @property
    def query(self) -> str:
        return "What happens to the main character?"

    @property
    def budget(self) -> tuple[BaseDocumentCompressor, int, Callable[[Document], int]] | None:
        """``(compressor, budget, cost)``: total ``cost`` of its output must be ``<= budget``;
        ``None`` when the compressor has no budget notion (the test is then skipped)."""
        return None

    # -- helpers -----------------------------------------------------------------------------
    def _check_from_inputs(self, inputs: list[Document], outputs: list[Document]) -> None:
        ids = [d.id for d in inputs]
        out_ids = [d.id for d in outputs]
        assert all(isinstance(d, Document) for d in outputs)
        assert all(isinstance(d.page_content, str) for d in outputs)
        assert set(out_ids) <= set(ids), "output documents must come from the input"
        positions = [ids.index(i) for i in out_ids]
        assert positions == sorted(positions), "output order must follow input order"

    # -- the contract ------------------------------------------------------------------------
    def test_empty_list(self) -> None:
        assert list(self.compressor.compress_documents([], self.query)) == []

    async def test_empty_list_async(self) -> None:
        assert list(await self.compressor.acompress_documents([], self.query)) == []

    def test_one_document(self) -> None:
        doc = self.documents[0]
        out = list(self.compressor.compress_documents([doc], self.query))
        assert len(out) <= 1
        self._check_from_inputs([doc], out)

    def test_many_documents(self) -> None:
        docs = self.documents
        out = list(self.compressor.compress_documents(docs, self.query))
        assert 0 < len(out) <= len(docs)
        self._check_from_inputs(docs, out)

    def test_unicode(self) -> None:
        docs = [
            Document(id=f"u{i}", page_content=t, metadata={"lang": i})
            for i, t in enumerate(UNICODE_TEXTS)
        ]
        out = list(self.compressor.compress_documents(docs, "When did the rocket launch? 🚀"))
        self._check_from_inputs(docs, out)
        for d in out:
            d.page_content.encode("utf-8")  # no lone surrogates, no broken characters

    def test_duplicate_documents(self) -> None:
        doc = self.documents[0]
        dupes = [
            Document(id=f"dup{i}", page_content=doc.page_content, metadata=dict(doc.metadata))
            for i in range(3)
        ]
        out = list(self.compressor.compress_documents(dupes, self.query))
        self._check_from_inputs(dupes, out)

    def test_metadata_kept(self) -> None:
        docs = self.documents
        by_id = {d.id: d for d in docs}
        for d in self.compressor.compress_documents(docs, self.query):
            original = by_id[d.id].metadata
            assert {k: d.metadata.get(k) for k in original} == original

    def test_order_kept(self) -> None:
        docs = list(reversed(self.documents))
        self._check_from_inputs(docs, list(self.compressor.compress_documents(docs, self.query)))

    def test_inputs_not_mutated(self) -> None:
        docs = self.documents
        before = copy.deepcopy(docs)
        self.compressor.compress_documents(docs, self.query)
        assert docs == before

    def test_budget_respected(self) -> None:
        spec = self.budget
        if spec is None:
            import pytest

            pytest.skip("the compressor declares no token budget")
        compressor, budget, cost = spec
        out = compressor.compress_documents(self.documents, self.query)
        assert sum(cost(d) for d in out) <= budget

    async def test_async_equals_sync(self) -> None:
        docs = self.documents
        sync = list(self.compressor.compress_documents(docs, self.query))
        asynchronous = list(await self.compressor.acompress_documents(docs, self.query))
        assert asynchronous == sync
