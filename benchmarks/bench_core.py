"""Cost of the core, warm, cold and raw encoder forward per 1k tokens (thin wrapper).

The measurement lives in :mod:`semtoken_lab.bench.compression`; this is
``semtoken-rag bench --skip-reader --skip-store`` (extra arguments are passed through).

    python benchmarks/bench_core.py --out bench_out [--sizes 1000,4000,16000,64000] [--repeats 3]
"""

from __future__ import annotations

import sys

from semtoken_rag.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--skip-reader", "--skip-store", *sys.argv[1:]]))
