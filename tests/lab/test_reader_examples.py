"""The example scripts that answer with the lab's reader (SmolLM2) run unchanged (issue 12).

The README's Quick Start: tests/test_examples.py; the Ray example: tests/test_ray_llama_index.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_example

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("langchain_retrieval_chain.py", ("--docs", "4", "--questions", "1")),
        ("llama_index_query_engine.py", ("--rows", "4", "--questions", "1")),
    ],
)
def test_example_runs(shared_data: Path, script: str, args: tuple[str, ...]) -> None:
    proc = run_example(script, *args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "total:" in proc.stdout or "saved" in proc.stdout
