"""The seed README's Quick Start and the Ray example run unchanged (issue 12).

The examples that answer with the reader (LangChain, LlamaIndex) are run by
tests/lab/test_reader_examples.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_example

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


@pytest.mark.ray
def test_ray_example_runs(ray_local: Any, shared_data: Path, tmp_path: Path) -> None:
    """On the session's local Ray (its ``--address``): a cluster of the example's own would be
    a second one on the 2 cores, started and stopped for this test alone."""
    store = tmp_path / "fp-ray"  # not the example's default: nothing left in the checkout
    address = ray_local.get_runtime_context().gcs_address
    proc = run_example(
        "llama_index_ray_ingestion.py", "--docs", "3", "--actors", "1", "--store-dir", str(store),
        "--address", address,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (store / "fingerprints.sqlite3").is_file()
