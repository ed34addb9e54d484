"""The GPU check's CPU rehearsal (``scripts/gpu_check.sh --cpu --smoke``) runs every step.

The device machine is lent rarely and for minutes, so the script that will run there is run
here in CI: wheels installed into a temporary site, random-weight models built from the carried
configs, the GPU tests collected and skipped *with their reason* (-rs), the benchmark run on the
CPU at the smallest sizes, the summary written.  No timing is asserted.

Opt-in (``pytest --gpu-rehearsal tests/test_gpu_check.py``): it takes minutes (on a fresh clone
it also downloads the device's wheels), more than the rest of CI's budget allows; run it before
a device session and after any change to ``scripts/gpu_check.sh`` or ``scripts/gpu_wheels.sh``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rehearsal(request, tmp_path_factory, shared_data):
    if not request.config.getoption("--gpu-rehearsal"):
        pytest.skip("the GPU check's rehearsal runs with --gpu-rehearsal (minutes; CONTRIBUTING)")
    if not (ROOT / ".whl").is_dir() or not (ROOT / ".gpu_assets").is_dir():
        prep = subprocess.run(
            ["bash", "scripts/gpu_wheels.sh", "--no-faiss"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PYTHON": sys.executable},
        )
        assert prep.returncode == 0, prep.stdout + prep.stderr
    out = tmp_path_factory.mktemp("gpu_out")
    run = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--cpu", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "OUT": str(out), "PYTHON": sys.executable},
    )
    return run, out


def test_rehearsal_runs_every_step(rehearsal):
    run, out = rehearsal
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    steps = {s["step"]: s["rc"] for s in summary["steps"]}
    for name in ("env", "install", "models", "bench"):
        assert steps.get(name) == 0, steps
    assert steps.get("tests") in (0, 5), steps  # all skipped on a CPU
    files = {p.name for p in out.iterdir()}
    assert {"gpu_check.log", "summary.json", "summary.md", "gpu_tests.xml"} <= files
    assert {"bench.json", "bench.md", "bench.png"} <= files
    assert len(files) <= 8  # what comes back from the device machine


def test_rehearsal_skips_gpu_tests_with_their_reason(rehearsal):
    _, out = rehearsal
    tests = json.loads((out / "summary.json").read_text(encoding="utf-8"))["tests"]
    assert tests["ran"] and tests["counts"].get("skipped", 0) >= 10
    assert set(tests["counts"]) == {"skipped"}
    assert all("no CUDA device" in c["detail"] for c in tests["cases"])


def test_rehearsal_benchmark_on_the_cpu_with_random_weights(rehearsal):
    _, out = rehearsal
    bench = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert bench["device"]["device"] == "cpu"
    assert bench["device"]["weights"]["encoder"]["weights"] == "random"
    assert bench["encoder"] and bench["encoder"][0]["fingerprint_tokens_per_s"] > 0
    assert bench["compression"]["rows"][0]["device"] == "cpu"
    rows = bench["endtoend"]["rows"]
    assert rows and rows[0]["kernels"] == ["sdpa"] and rows[0]["full_prefill_tokens_per_s"] > 0
    assert bench["compression"]["baselines"][0]["method"] == "embed-filter"
    md = (out / "bench.md").read_text(encoding="utf-8")
    assert "Random weights" in md and "## Encoder" in md
