"""The seed README's Quick Start and every example script run unchanged (issue 12)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

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


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("langchain_retrieval_chain.py", ("--docs", "4", "--questions", "2")),
        ("llama_index_query_engine.py", ("--rows", "4", "--questions", "2")),
    ],
)
def test_example_runs(shared_data: Path, script: str, args: tuple[str, ...]) -> None:
    proc = _run(script, *args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "total:" in proc.stdout or "saved" in proc.stdout


@pytest.mark.ray
def test_ray_example_runs(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    store = tmp_path / "fp-ray"  # not the example's default: nothing left in the checkout
    proc = _run(
        "llama_index_ray_ingestion.py", "--docs", "3", "--actors", "1", "--store-dir", str(store)
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (store / "fingerprints.sqlite3").is_file()
