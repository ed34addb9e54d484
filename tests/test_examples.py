"""The seed README's Quick Start runs unchanged (issue 12).

The examples that answer with the reader (LangChain, LlamaIndex) are run by
tests/lab/test_reader_examples.py, the LlamaIndex Ray example by tests/test_ray_llama_index.py."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _quick_start() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start (the seed API)", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README has no Quick Start code block"
    return match.group(1)


def test_readme_quick_start_runs_as_written(narrativeqa: list[dict]) -> None:
    namespace = {
        "text": narrativeqa[0]["context"],
        "documents": [row["context"] for row in narrativeqa[:3]],
    }
    exec(compile(_quick_start(), "README.md#quick-start", "exec"), namespace)
    assert namespace["result"]["compressed_text"]
    assert len(namespace["batch"]) == 3
