"""Local reader TTFT and answer time, full vs compressed context (thin wrapper).

The measurement lives in :mod:`semtoken_lab.bench.endtoend`; this is
``semtoken-rag bench --skip-compression --skip-store`` (extra arguments are passed through).

    python benchmarks/bench_reader_ttft.py --out bench_out \
        [--e2e-sizes 1000,2000,4000,8000] [--e2e-ratios 0.5,0.25] [--e2e-repeats 2]
"""

from __future__ import annotations

import sys

from semtoken_rag.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--skip-compression", "--skip-store", *sys.argv[1:]]))
