"""Import boundaries, checked in fresh interpreters (this test session imports everything).

* ``import semtoken_rag`` and the engine's public objects load no framework, no FAISS, no
  torch, and nothing of the research lab (``semtoken_lab``: reader, harness, benchmarks, plots).
* The engine never imports the lab, at any depth: the lab builds on the engine, not the reverse.
* Adapters import their framework, but still no lab.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("langchain", "langchain_core", "llama_index", "faiss", "ray", "torch", "transformers")
LAB = ("semtoken_lab", "matplotlib", "llmlingua", "sentence_transformers", "accelerate")


def _loaded(code: str, banned: tuple[str, ...]) -> list[str]:
    probe = (
        f"{code}; import sys; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(banned)!r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_import_semtoken_rag_is_light() -> None:
    assert _loaded("import semtoken_rag", HEAVY + LAB) == []


@pytest.mark.slow
def test_public_engine_objects_stay_light() -> None:
    """Touching the config, results, engine and store classes (what adapters import at module
    level) loads no framework, no FAISS, no torch and no lab."""
    code = (
        "import semtoken_rag; "
        "from semtoken_rag import SemTokenConfig, CompressionResult, ChunkResult, Compressor; "
        "from semtoken_rag import FingerprintStore; import semtoken_rag.adapters; "
        "from semtoken_rag.config import Device, ForceKeepPreset; SemTokenConfig()"
    )
    assert _loaded(code, HEAVY + LAB) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "module",
    ["langchain_semtoken", "llama_index.postprocessor.semtoken"],
)
def test_adapters_pull_in_no_lab(module: str) -> None:
    assert _loaded(f"import {module}", LAB) == []


def test_engine_source_never_imports_the_lab() -> None:
    """Static check over every engine module (lazy imports inside functions included).

    The CLI is the one exception: it hosts the lab's subcommands and the demo's heatmap, each
    behind a guarded import that answers with the install hint when the lab is absent."""
    offenders = []
    for path in (ROOT / "semtoken_rag").rglob("*.py"):
        if path.parent.name == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith(LAB)]
    assert offenders == [], offenders


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """``(module, names)`` imported anywhere in a module: at the top, lazily inside functions,
    and under ``if TYPE_CHECKING:`` (a lazy or type-only circle is still a circle: the two
    modules cannot be understood, moved or tested apart).  Relative imports are resolved."""
    package = module if is_package else module.rpartition(".")[0]
    out: list[tuple[str, list[str]]] = []
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Import):
            out += [(a.name, []) for a in sub.names]
        elif isinstance(sub, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - (sub.level - 1)] if sub.level else []
            target = ".".join([*base, *([sub.module] if sub.module else [])])
            if target:
                out.append((target, [a.name for a in sub.names]))
    return out


def test_no_import_circle() -> None:
    """No cycle among the project's modules (engine, lab, adapters), counting every import:
    lazy ones inside functions and those under ``if TYPE_CHECKING:`` included."""
    roots = {
        ROOT: ["semtoken_rag"],
        ROOT / "lab": ["semtoken_lab"],
        ROOT / "integrations" / "langchain": ["langchain_semtoken"],
        ROOT / "integrations" / "llama_index": ["llama_index/postprocessor/semtoken"],
    }
    modules: dict[str, Path] = {}
    for root, packages in roots.items():
        for package in packages:
            for path in (root / package).rglob("*.py"):
                modules[_module_name(path, root)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target, names in _imports(tree, name, path.name == "__init__.py"):
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            edges.update(subs or ([target] if target in modules else []))
        graph[name] = edges - {name}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == [], cycles
