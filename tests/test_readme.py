"""Every README snippet marked ``<!-- tested: NAME -->`` runs as written, offline.

The snippets are executed in a fresh temporary directory (so ``store_dir="fp-store"`` writes
nothing into the checkout) with ``text``, ``documents`` and ``question`` taken from real data
(three essays of ``shared/data/needle_haystack``), the names the README leaves to the reader.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _snippets() -> dict[str, str]:
    """``{name: code}`` of the README's marked Python blocks."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"<!-- tested: ([\w-]+) -->\n```python\n(.*?)```", readme, re.S)
    return dict(found)


def test_the_readme_marks_its_snippets() -> None:
    assert set(_snippets()) >= {"shared-model", "auto", "store", "langchain", "llama-index"}


@pytest.mark.parametrize("name", sorted(_snippets()))
def test_readme_snippet_runs(
    name: str, shared_data: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    from tests.conftest import read_jsonl

    essays = [r["text"] for r in read_jsonl(shared_data / "needle_haystack" / "essays.jsonl", 3)]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {
        "text": essays[0],
        "documents": essays,
        "question": "What should a startup founder do first?",
    }
    exec(compile(_snippets()[name], f"README.md#{name}", "exec"), namespace)
    checks = {
        "auto": lambda ns: ns["res"].budget_choice is not None,
        "store": lambda ns: ns["res"].encoder_calls == 0 and ns["report"].encoded == 3,
        "langchain": lambda ns: ns["out"] and "semtoken" in ns["out"][0].metadata,
        "llama-index": lambda ns: ns["compressed"] and ns["retrieved"],
        "shared-model": lambda ns: ns["comp"].encoder is not None,
    }
    assert checks[name](namespace)
