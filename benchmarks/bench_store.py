"""Fingerprint store throughput, bytes on disk, cold vs warm compression (thin wrapper).

The measurement lives in :mod:`semtoken_lab.bench.store`; this is
``semtoken-rag bench --skip-compression --skip-reader`` (extra arguments are passed through).

    python benchmarks/bench_store.py --out bench_out [--store-contexts 50]
"""

from __future__ import annotations

import sys

from semtoken_rag.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--skip-compression", "--skip-reader", *sys.argv[1:]]))
