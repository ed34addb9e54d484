"""Golden outputs of the engine on real data: refactors must not change a single byte.

The golden file holds, for 50 NarrativeQA contexts (one chunk each), 20 HotpotQA contexts (its
ten paragraphs as ten chunks) and 10 NarrativeQA contexts cut into overlapping 120/60-word
windows (repeats across chunks), at ratios 0.5 and 0.25 counted in the reader's tokens: the
sha256 of every compressed chunk's text and its offsets.  Only hashes and offsets are stored,
never the data.

Regenerate (only when a change of output is intended, and say so in the commit):
``python -m tests.test_golden_compress --write``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DATA, read_jsonl

GOLDEN = Path(__file__).parent / "golden" / "compress_golden.json"
RATIOS = (0.5, 0.25)

pytestmark = pytest.mark.slow


def _windows(text: str, size: int = 120, overlap: int = 60) -> list[str]:
    from semtoken_rag.core.segment import find_words

    ws = find_words(text)
    out, step = [], size - overlap
    for a in range(0, len(ws), step):
        b = min(a + size, len(ws))
        out.append(text[ws[a, 0] : ws[b - 1, 1]])
        if b == len(ws):
            break
    return out


def cases(data: Path) -> list[tuple[str, list[str], str]]:
    """``(case id, chunks, question)`` of the golden set (deterministic)."""
    out: list[tuple[str, list[str], str]] = []
    per_doc: dict[str, int] = {}
    nqa = read_jsonl(data / "narrativeqa" / "test.jsonl")
    for row in nqa:
        doc = hashlib.sha256(row["context"].encode()).hexdigest()
        if per_doc.get(doc, 0) >= 2:
            continue
        per_doc[doc] = per_doc.get(doc, 0) + 1
        out.append((f"nqa:{row['id']}", [row["context"]], row["question"]))
        if len(out) == 50:
            break
    for row in read_jsonl(data / "hotpotqa_dev_sample" / "dev.jsonl", limit=20):
        chunks = [f"{p['title']}\n{p['text']}" for p in row["paragraphs"]]
        out.append((f"hotpot:{row['id']}", chunks, row["question"]))
    for _, chunks, question in list(out[:20:2]):
        out.append(
            (
                f"nqa-windows:{hashlib.sha256(question.encode()).hexdigest()[:12]}",
                _windows(chunks[0]),
                question,
            )
        )
    return out


def compute(data: Path, shared: Any = None) -> dict[str, Any]:
    """The golden outputs, with ``SemTokenConfig(count_tokenizer="smollm2")``.

    ``shared``: a compressor with the default encoder whose loaded encoder is reused (no second
    MiniLM load). The fingerprint store is a fresh one all the same: every text is encoded here,
    alone, as when the golden file was written, whatever other tests cached before.
    """
    from semtoken_rag import Compressor, SemTokenConfig

    config = SemTokenConfig(count_tokenizer="smollm2")
    if shared is None:
        comp = Compressor(config)
    else:
        assert shared.config.encoder == config.encoder, "the shared encoder must be the default"
        comp = Compressor(config, encoder=shared.encoder)
    result: dict[str, Any] = {}
    for case_id, chunks, question in cases(data):
        for ratio in RATIOS:
            res = comp.compress(chunks, question, ratio=ratio)
            result[f"{case_id}@{ratio}"] = [
                [hashlib.sha256(c.text.encode()).hexdigest()[:16], [list(o) for o in c.offsets]]
                for c in res.chunks
            ]
    return result


def test_engine_output_is_byte_identical_to_golden(shared_data: Path, real_compressor) -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = compute(shared_data, shared=real_compressor)
    assert got.keys() == expected.keys()
    changed = [k for k in expected if got[k] != expected[k]]
    assert not changed, f"{len(changed)} of {len(expected)} outputs changed, e.g. {changed[:5]}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(compute(SHARED_DATA), sort_keys=True) + "\n", "utf-8")
        print(f"wrote {GOLDEN}")
