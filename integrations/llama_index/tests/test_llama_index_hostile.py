"""Hostile review of ``SemTokenNodePostprocessor``, round 2: what broke, pinned (real MiniLM).

``compression_ratio="auto"`` with ``budget_scope="per_node"`` and a whitespace-only node after
the others failed with an ``IndexError`` in the engine: the ``auto`` budget was shared only up
to the last node holding a sentence (a node with no text at all passes through, untouched).
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

pytestmark = pytest.mark.slow

TEXTS = [
    "Krag leads Maskull north. The journey to Tormance takes many days.",
    "Nightspore waits at the tower. Maskull accepts the invitation from Krag.",
]


@pytest.mark.parametrize("tail", [["   \n"], ["\t", ""], ["", " "]])
@pytest.mark.parametrize("drop_empty", [True, False])
async def test_auto_per_node_with_blank_nodes_last(
    make_postprocessor: Any, tail: list[str], drop_empty: bool
) -> None:
    pp = make_postprocessor(
        compression_ratio="auto", budget_scope="per_node", drop_empty=drop_empty
    )
    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}", metadata={"rank": i}), score=1.0 - i / 10)
        for i, t in enumerate([*TEXTS, *tail])
    ]
    snapshot = [n.model_copy(deep=True) for n in nodes]
    out = pp.postprocess_nodes(nodes, query_str="Who invites Maskull?")
    assert [n.node.model_dump() for n in nodes] == [n.node.model_dump() for n in snapshot]
    by_id = {n.node.node_id: n for n in nodes}
    for n in out:
        src = by_id[n.node.node_id]
        assert n.score == src.score
        original = src.node.get_content(metadata_mode=MetadataMode.NONE)
        if not original:  # no text at all: passed through untouched
            assert n is src
            continue
        sem = n.node.metadata["semtoken"]
        assert "budget_choice" in sem and n.node.metadata["rank"] == src.node.metadata["rank"]
        pieces = [original[s:e] for s, e in sem["offsets"]]
        assert " … ".join(pieces) == n.node.get_content(metadata_mode=MetadataMode.NONE)
    blank = [i for i, t in enumerate([*TEXTS, *tail]) if t and not t.strip()]
    kept_ids = {n.node.node_id for n in out}
    assert all((f"n{i}" in kept_ids) is (not drop_empty) for i in blank)
    again = await pp.apostprocess_nodes(nodes, query_str="Who invites Maskull?")
    assert [n.node.get_content() for n in again] == [n.node.get_content() for n in out]
