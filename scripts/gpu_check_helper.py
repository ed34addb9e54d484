"""Helpers of scripts/gpu_check.sh: machine probe, FAISS probe, and the final summary.

Usage (from gpu_check.sh):
    python scripts/gpu_check_helper.py env OUT.json
    python scripts/gpu_check_helper.py faiss OUT.json
    python scripts/gpu_check_helper.py summary WORK_DIR OUT_DIR

Each probe writes JSON and never raises: a probe that fails records why, so the check goes on
and the summary says what could not run.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable: {exc}"
    return (out.stdout or out.stderr).strip()


def probe_env() -> dict[str, Any]:
    """Python, torch/CUDA, GPU, driver and the versions of the packages the project uses."""
    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        info["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["gpu"] = {
                "name": p.name,
                "count": torch.cuda.device_count(),
                "capability": f"{p.major}.{p.minor}",
                "memory_gib": round(p.total_memory / 2**30, 1),
                "bf16": torch.cuda.is_bf16_supported(),
                "flash_sdp_enabled": torch.backends.cuda.flash_sdp_enabled(),
            }
    except Exception as exc:  # the probe reports, never stops the check
        info["torch_error"] = repr(exc)
    versions = {}
    from importlib import metadata

    for name in (
        "transformers",
        "tokenizers",
        "sentence-transformers",
        "numpy",
        "safetensors",
        "flash-attn",
        "faiss-cpu",
        "semtoken-rag",
        "semtoken-rag-lab",
        "pytest",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info["packages"] = versions
    info["nvidia_smi"] = _run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    )
    return info


def probe_faiss() -> dict[str, Any]:
    """Is a ``faiss`` (a CPU build: the store's codecs) importable, and which one?

    Without one the benchmark's store section is skipped; the library has no GPU FAISS code.
    """
    try:
        import faiss
    except Exception as exc:  # ImportError, or OSError from a missing shared library
        return {"importable": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "importable": True,
        "version": getattr(faiss, "__version__", None),
        "file": getattr(faiss, "__file__", None),
    }


def _junit(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"ran": False}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return {"ran": False, "error": str(exc)}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {"ran": False}
    cases = []
    for case in suite.iter("testcase"):
        status, detail = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                detail = (
                    (el.get("message") or "").splitlines()[0][:300] if el.get("message") else ""
                )
        cases.append({"test": case.get("name"), "status": status, "detail": detail})
    counts: dict[str, int] = {}
    for c in cases:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    return {"ran": True, "counts": counts, "cases": cases}


def _steps(path: Path) -> list[dict[str, Any]]:
    steps = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, rc, secs = line.split()
            steps.append({"step": name, "rc": int(rc), "seconds": float(secs)})
    return steps


def summary(work: Path, out: Path) -> dict[str, Any]:
    """summary.json + summary.md in ``out`` from the step log, probes, tests and benchmark."""

    def load(p: Path) -> Any:
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    bench = load(out / "bench.json")
    data = {
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "mode": (work / "mode").read_text(encoding="utf-8").strip()
        if (work / "mode").is_file()
        else None,
        "steps": _steps(work / "steps.txt"),
        "env": load(work / "env.json"),
        "faiss": load(work / "faiss.json"),
        "tests": _junit(out / "gpu_tests.xml"),
        "agreement": load(out / "gpu_agreement.json"),
        "targets": (bench or {}).get("targets"),
        "bench_device": (bench or {}).get("device"),
    }
    (out / "summary.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    lines = [f"# GPU check ({data['mode']}), {data['written']}", ""]
    env = data["env"] or {}
    gpu = env.get("gpu") or {}
    lines.append(
        f"Python {env.get('python')}, torch {env.get('torch')} (CUDA {env.get('torch_cuda')}), "
        f"GPU {gpu.get('name', 'none')} {gpu.get('memory_gib', '')} GiB, "
        f"nvidia-smi: {env.get('nvidia_smi')}"
    )
    fa = data["faiss"] or {}
    lines.append(
        f"FAISS (CPU; the benchmark's store section): {fa.get('version')} from {fa.get('file')}"
        if fa.get("importable")
        else f"FAISS: not importable, store section skipped ({fa.get('error')})"
    )
    lines += ["", "| step | rc | s |", "|---|---:|---:|"]
    lines += [f"| {s['step']} | {s['rc']} | {s['seconds']:.0f} |" for s in data["steps"]]
    t = data["tests"]
    lines += ["", f"Tests: {t.get('counts') if t.get('ran') else 'not run'}"]
    for c in t.get("cases", []):
        if c["status"] != "passed":
            lines.append(f"- {c['status']}: {c['test']}: {c['detail']}")
    if data["targets"]:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {x['name']} | {x['measured']} | {x['met']} |" for x in data["targets"]]
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return data


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "env":
        Path(argv[2]).write_text(json.dumps(probe_env(), indent=1), encoding="utf-8")
    elif cmd == "faiss":
        result = probe_faiss()
        Path(argv[2]).write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(json.dumps(result))
        return 0 if result["importable"] else 3
    elif cmd == "summary":
        summary(Path(argv[2]), Path(argv[3]))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
