"""``import semtoken_rag`` must stay light: no LangChain, LlamaIndex or FAISS at import time.

Checked in a fresh interpreter, because this test session itself imports all of them.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("langchain", "langchain_core", "llama_index", "faiss")

CHECK = (
    "import semtoken_rag, sys; "
    f"heavy = sorted({{m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}}}); "
    "assert not heavy, heavy"
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_import_semtoken_rag_imports_no_framework_or_faiss() -> None:
    proc = _run(CHECK)
    assert proc.returncode == 0, proc.stderr


def test_lazy_attributes_stay_light() -> None:
    """Touching the public config and result types (what the adapters import at module level)
    loads no framework either."""
    proc = _run(
        "import semtoken_rag, sys; "
        "from semtoken_rag import SemTokenConfig, CompressionResult, ChunkResult; "
        "from semtoken_rag.config import Device, ForceKeepPreset; "
        "SemTokenConfig(); "
        f"heavy = sorted({{m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}}}); "
        "assert not heavy, heavy"
    )
    assert proc.returncode == 0, proc.stderr
