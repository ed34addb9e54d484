"""``SemTokenCompressor`` against the reusable document-compressor contract (real MiniLM)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document
from lc_compressor_contract import DocumentCompressorContract

pytestmark = pytest.mark.slow

QUERY = "Who does Maskull accept an invitation from?"


class TestSemTokenCompressorContract(DocumentCompressorContract):
    """The generic contract, plus what ``SemTokenCompressor`` promises on top of it."""

    @pytest.fixture(autouse=True)
    def _setup(self, make_compressor: Any, lc_documents: list[Document]) -> None:
        self._make = make_compressor
        self._docs = lc_documents[:8]

    @property
    def compressor(self):
        return self._make(compression_ratio=0.5)

    @property
    def documents(self) -> list[Document]:
        return [d.model_copy(deep=True) for d in self._docs]

    @property
    def query(self) -> str:
        return QUERY

    @property
    def budget(self):
        comp = self._make(budget_tokens=100)
        return comp, 100, lambda d: comp.engine.count_tokens(d.page_content)

    # -- SemToken-specific promises ----------------------------------------------------------
    def test_semtoken_metadata_and_offsets(self) -> None:
        docs = self.documents
        by_id = {d.id: d for d in docs}
        out = self.compressor.compress_documents(docs, self.query)
        assert out
        sep = self.compressor.semtoken_config().budget.separator
        for d in out:
            meta = d.metadata["semtoken"]
            assert set(meta) == {"offsets", "original_tokens", "kept_tokens", "ratio"}
            original = by_id[d.id].page_content
            pieces = [original[s:e] for s, e in meta["offsets"]]
            assert sep.join(pieces) == d.page_content
            assert 0 < meta["kept_tokens"] <= meta["original_tokens"]
            assert meta["ratio"] == pytest.approx(meta["kept_tokens"] / meta["original_tokens"])

    def test_duplicates_kept_once(self) -> None:
        doc = self.documents[0]
        dupes = [Document(id=f"dup{i}", page_content=doc.page_content) for i in range(3)]
        out = self._make(compression_ratio=1.0).compress_documents(dupes, self.query)
        # near-duplicate skip across documents: the copies add nothing, so they are dropped
        assert [d.id for d in out] == ["dup0"]
        assert out[0].page_content == doc.page_content

    def test_drop_empty_false_keeps_one_output_per_input(self) -> None:
        docs = self.documents
        comp = self._make(compression_ratio=0.1, drop_empty=False)
        out = comp.compress_documents(docs, self.query)
        assert [d.id for d in out] == [d.id for d in docs]
        assert any(d.page_content == "" for d in out)
        assert all(d.metadata["semtoken"]["offsets"] == [] for d in out if not d.page_content)

    def test_ratio_respected_joint_and_per_document(self) -> None:
        docs = self.documents
        for scope in ("joint", "per_document"):
            comp = self._make(compression_ratio=0.4, budget_scope=scope)
            out = comp.compress_documents(docs, self.query)
            kept = sum(d.metadata["semtoken"]["kept_tokens"] for d in out)
            total = sum(comp.engine.count_tokens(d.page_content) for d in docs)
            assert kept <= int(0.4 * total)
            if scope == "per_document":
                for d in out:
                    meta = d.metadata["semtoken"]
                    assert meta["kept_tokens"] <= int(0.4 * meta["original_tokens"])
