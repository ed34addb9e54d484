"""The bench CLI in ``--quick`` mode writes its three reports with the expected keys.

No timing assertions (CONTRIBUTING): only that the files exist and are well formed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semtoken_rag.cli.main import main

pytestmark = pytest.mark.slow


def test_bench_quick_writes_reports(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench"
    rc = main(
        [
            "bench",
            "--out",
            str(out),
            "--quick",
            "--skip-reader",
            "--skip-baselines",
            "--data",
            str(shared_data),
        ]
    )
    assert rc == 0
    data = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert {"command", "machine", "settings", "compression", "store", "endtoend", "targets"} <= set(
        data
    )
    assert {"cpu_model", "nproc", "torch_threads"} <= set(data["machine"])
    import torch

    want = "cuda:0" if torch.cuda.is_available() else "cpu"  # --device auto
    assert data["device"]["device"] == want and data["device"]["weights"]["encoder"] == "real"
    assert data["encoder"] == []  # the encoder section is opt-in (--encoder)
    rows = data["compression"]["rows"]
    assert [r["target_tokens"] for r in rows] == [300, 1000]
    assert {r["device"] for r in rows} == {want}
    for key in (
        "core_ms_per_1k",
        "warm_repeat_query_ms_per_1k",
        "warm_fresh_query_ms_per_1k",
        "cold_ms_per_1k",
        "raw_forward_ms_per_1k",
        "cold_over_raw",
        "stages_ms",
        "core_peak_bytes",
    ):
        assert key in rows[0]
    assert {"spans", "entropy", "scoring", "dedup", "selection", "render"} <= set(
        rows[0]["stages_ms"]
    )
    assert {"core", "cold"} <= set(data["compression"]["exponents"])
    assert data["compression"]["baselines"] == []
    assert data["endtoend"]["rows"] == []
    assert data["store"]["warm_encoder_calls"] == 0
    names = {t["name"] for t in data["targets"]}
    assert {"core", "cold vs raw encoder", "scaling k (core)"} <= names
    md = (out / "bench.md").read_text(encoding="utf-8")
    assert "## Compression cost" in md and "## Targets" in md
    png = (out / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out
