"""Real MiniLM on the first 50 NarrativeQA examples: ratio tracking, offsets, force-keep and
determinism."""

from __future__ import annotations

import re

import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.core.forcekeep import PRESET_PATTERNS
from tests.conftest import real_variant

pytestmark = pytest.mark.slow


def assert_verbatim_in_order(original: str, chunk, separator: str) -> None:
    prev = 0
    for s, e in chunk.offsets:
        assert prev <= s < e <= len(original)
        prev = e
    assert chunk.text == separator.join(original[s:e] for s, e in chunk.offsets)


def test_ratio_half_tracks_target_on_every_example(
    real_compressor: Compressor, narrativeqa: list[dict]
) -> None:
    assert len(narrativeqa) == 50
    sep = real_compressor.config.budget.separator
    ratios = []
    # One batched call: every question is encoded in one pass (the contexts are cached).
    results = real_compressor.compress_many(
        [(ex["context"], ex["question"]) for ex in narrativeqa], ratio=0.5
    )
    for ex, res in zip(narrativeqa, results, strict=False):
        c = res.chunks[0]
        assert c.original_tokens == real_compressor.count_tokens(ex["context"])
        ratio = c.kept_tokens / c.original_tokens
        ratios.append(ratio)
        assert 0.45 <= ratio <= 0.55, (ex["id"], ratio)
        assert res.kept_tokens <= res.budget_tokens
        assert_verbatim_in_order(ex["context"], c, sep)
    assert min(ratios) >= 0.45 and max(ratios) <= 0.55


def test_force_keep_matches_survive(real_compressor: Compressor, narrativeqa: list[dict]) -> None:
    comp = real_variant(
        real_compressor, force_keep_presets=("numbers",), force_keep=(r"\bKrag\b", r"\bMaskull\b")
    )
    cfg = comp.config
    rule = re.compile(r"\bKrag\b|\bMaskull\b|" + PRESET_PATTERNS["numbers"])
    n_matches = 0
    for ratio in (0.5, 0.1):
        results = comp.compress_many(
            [(ex["context"], ex["question"]) for ex in narrativeqa], ratio=ratio
        )
        for ex, res in zip(narrativeqa, results, strict=False):
            ctx = ex["context"]
            c = res.chunks[0]
            assert_verbatim_in_order(ctx, c, cfg.budget.separator)
            for m in rule.finditer(ctx):
                n_matches += 1
                assert any(s <= m.start() and m.end() <= e for s, e in c.offsets), m.group(0)
            # The budget yields to force-keep, and the overshoot is reported.
            assert res.kept_tokens <= res.budget_tokens + res.overshoot_tokens
            assert res.overshoot_tokens == max(0, res.kept_tokens - res.budget_tokens)
            if res.overshoot_tokens:
                assert c.forced_tokens > 0
    assert n_matches > 0


@pytest.mark.parametrize("query_of", [lambda ex: ex["question"], lambda ex: None])
def test_deterministic_across_fresh_compressors(narrativeqa: list[dict], query_of) -> None:
    examples = narrativeqa[:50:10]
    a = Compressor(SemTokenConfig())
    b = Compressor(SemTokenConfig())
    for ex in examples:
        ra = a.compress(ex["context"], query_of(ex), ratio=0.5)
        rb = b.compress(ex["context"], query_of(ex), ratio=0.5)
        assert ra.chunks[0].text.encode() == rb.chunks[0].text.encode()
        assert ra.chunks[0].offsets == rb.chunks[0].offsets
        assert ra.kept_tokens == rb.kept_tokens


def test_multi_chunk_context_keeps_order(
    real_compressor: Compressor, narrativeqa: list[dict]
) -> None:
    ex = narrativeqa[0]
    words = ex["context"].split(" ")
    # Overlapping retrieved chunks of ~120 words with a 60-word overlap.
    chunks = [" ".join(words[i : i + 120]) for i in range(0, len(words), 60)]
    res = real_compressor.compress(chunks, ex["question"], ratio=0.5)
    assert len(res.chunks) == len(chunks)
    for original, c in zip(chunks, res.chunks, strict=False):
        assert_verbatim_in_order(original, c, real_compressor.config.budget.separator)
    assert res.kept_tokens <= res.budget_tokens
