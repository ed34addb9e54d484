"""The Ray driver's ceiling (issue 25 point 3): ``ray_ingest`` with zero-cost actors, so the
rate is what one driver receives and writes (see :mod:`semtoken_lab.bench.ray_driver`).

    OMP_NUM_THREADS=1 python benchmarks/bench_ray_driver.py --out bench_out/ray_driver
    python benchmarks/bench_ray_driver.py --out bench_out/ray_driver --quick      # smoke
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from semtoken_lab.bench.ray_driver import markdown, run_driver

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="200 documents, pq64 only")
    parser.add_argument("--chunks", type=int, default=2000, help="120-word documents")
    parser.add_argument("--codecs", default="pq64,float32")
    parser.add_argument("--actors", default="1,2")
    parser.add_argument("--variants", default="encoded,fingerprints")
    parser.add_argument("--batch", type=int, default=64, help="documents per batch/transaction")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--cpus-per-actor", type=float, default=1.0)
    parser.add_argument("--data", type=Path, default=None, help="data root (../shared/data)")
    args = parser.parse_args(argv)
    if args.quick:
        args.chunks, args.codecs, args.variants = 200, "pq64", "encoded"
    rows = run_driver(
        args.out, chunks=args.chunks, codecs=args.codecs.split(","),
        actors=[int(x) for x in args.actors.split(",")], variants=args.variants.split(","),
        batch=args.batch, cpus=args.cpus, cpus_per_actor=args.cpus_per_actor,
        data_root=args.data,
    )  # fmt: skip
    import json

    info = json.loads((args.out / "ray_driver.json").read_text(encoding="utf-8"))["workload"]
    print("\n".join(markdown(info, rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
