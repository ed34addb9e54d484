"""The library's size rules (CONTRIBUTING "Style"), checked so they cannot drift.

Modules of the engine, both adapters, the research lab (``lab/semtoken_lab``), the benchmark
scripts and ``scripts/`` stay under 400 lines and their functions under 60: one concept per
module, one decision per function.  The examples (``examples/``) are exempt: each is one linear
``main`` a newcomer reads top to bottom, the way the frameworks' own examples are written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _library_sources() -> list[Path]:
    files = sorted((ROOT / "semtoken_rag").rglob("*.py"))
    for folder in ("lab/semtoken_lab", "benchmarks", "scripts"):
        files += sorted((ROOT / folder).rglob("*.py"))
    for pkg in ("langchain", "llama_index"):
        files += [
            p
            for p in sorted((ROOT / "integrations" / pkg).rglob("*.py"))
            if not {"tests", "build"} & set(p.relative_to(ROOT).parts)
        ]
    return files


def test_library_sources_found() -> None:
    rel = {str(p.relative_to(ROOT)) for p in _library_sources()}
    assert "semtoken_rag/compressor.py" in rel
    assert "integrations/langchain/langchain_semtoken/compressor.py" in rel
    assert "integrations/llama_index/llama_index/postprocessor/semtoken/base.py" in rel
    assert "lab/semtoken_lab/eval/runner.py" in rel
    assert "benchmarks/bench_ray_ingest.py" in rel


@pytest.mark.parametrize("path", _library_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    lines = source.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines > {MAX_MODULE_LINES}"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"
