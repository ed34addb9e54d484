"""``semtoken-rag bench``: what compression costs against the reader work it saves.

Writes ``bench.json``, ``bench.md`` and ``bench.png`` into ``--out`` (rewritten after every
section, so an interrupted run still leaves a report).  Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from semtoken_rag.cli.args import integer, number_list, ratio

#: Defaults of the options ``--quick`` shrinks.
DEFAULTS: dict[str, Any] = {
    "sizes": "1000,4000,16000,64000",
    "repeats": 3,
    "e2e_sizes": "1000,2000,4000,8000",
    "e2e_repeats": 2,
    "store_contexts": 50,
    "store_codecs": "float32,pq64",
    "lingua_max_tokens": 4000,
    "encoder_tokens": 64000,
    "encoder_batch_sizes": "32,64,128,256,512",
}
#: ``--quick``: tiny sizes, one repeat (a smoke run; its timings mean nothing).
QUICK: dict[str, Any] = {
    "sizes": "300,1000",
    "repeats": 1,
    "e2e_sizes": "500,1000",
    "e2e_repeats": 1,
    "store_contexts": 3,
    "store_codecs": "float32,float16",
    "lingua_max_tokens": 1000,
    "encoder_tokens": 2000,
    "encoder_batch_sizes": "32,128",
}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--sizes",
        type=number_list("--sizes", 1, 262144, integers=True, keep_text=True),
        default=DEFAULTS["sizes"],
        help="compression workload sizes in encoder tokens",
    )
    parser.add_argument(
        "--repeats",
        type=integer("--repeats", high=100),
        default=DEFAULTS["repeats"],
        help="timed repeats (medians)",
    )
    parser.add_argument("--ratio", type=ratio, default=0.5, help="ratio of the cost benchmark")
    parser.add_argument("--skip-reader", action="store_true", help="no end-to-end reader run")
    parser.add_argument(
        "--skip-baselines", action="store_true", help="no embed-filter / LongLLMLingua"
    )
    parser.add_argument("--skip-store", action="store_true", help="no fingerprint store run")
    parser.add_argument(
        "--skip-compression", action="store_true", help="no compression cost run (core/warm/cold)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke)")
    parser.add_argument("--data", type=Path, default=None, help="data root (../shared/data)")
    parser.add_argument(
        "--e2e-sizes",
        type=number_list("--e2e-sizes", 1, 32768, integers=True, keep_text=True),
        default=DEFAULTS["e2e_sizes"],
        help="end-to-end context sizes in reader tokens",
    )
    parser.add_argument(
        "--e2e-ratios",
        type=number_list("--e2e-ratios", 0.0, 1.0, low_open=True, keep_text=True),
        default="0.5,0.25",
    )
    parser.add_argument(
        "--e2e-repeats", type=integer("--e2e-repeats", high=100), default=DEFAULTS["e2e_repeats"]
    )
    parser.add_argument("--max-new-tokens", type=integer("--max-new-tokens", high=4096), default=16)
    parser.add_argument(
        "--lingua-max-tokens",
        type=integer("--lingua-max-tokens", low=0, high=262144),
        default=DEFAULTS["lingua_max_tokens"],
        help="largest workload LongLLMLingua runs on (1 repeat)",
    )
    parser.add_argument(
        "--store-contexts",
        type=integer("--store-contexts", high=10000),
        default=DEFAULTS["store_contexts"],
    )
    parser.add_argument(
        "--store-codecs",
        default=DEFAULTS["store_codecs"],
        help="codecs of the store section, or 'all' (the codec table of docs/store.md)",
    )
    parser.add_argument(
        "--store-scale",
        type=number_list("--store-scale", 1, 10**6, integers=True, max_items=8, keep_text=True),
        default=None,
        metavar="N[,N...]",
        help="also run the store at scale: N synthetic entries each (store_scale.json/.md)",
    )
    parser.add_argument(
        "--threads",
        type=integer("--threads", high=4096),
        default=None,
        help="torch and BLAS threads (default: library's)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda or cuda:N: encoder, reader and baselines all run there",
    )
    parser.add_argument(
        "--encoder-model", default=None, help="encoder id or folder (default: the packaged)"
    )
    parser.add_argument("--reader", default="smollm2", help="reader model (alias, folder, .gguf)")
    parser.add_argument("--attn", default="auto", help="reader attention (see `semtoken-rag ask`)")
    parser.add_argument(
        "--baselines", default="embed-filter,longllmlingua", help="baseline methods to time"
    )
    parser.add_argument("--encoder", action="store_true", help="run the encoder throughput section")
    parser.add_argument(
        "--encoder-tokens",
        type=integer("--encoder-tokens", high=10**6),
        default=DEFAULTS["encoder_tokens"],
    )
    parser.add_argument(
        "--encoder-batch-sizes",
        type=number_list("--encoder-batch-sizes", 1, 4096, integers=True, keep_text=True),
        default=DEFAULTS["encoder_batch_sizes"],
    )
    parser.add_argument(
        "--encoder-dtypes",
        default=None,
        help="encoder dtypes (default: float32,float16,bfloat16 on CUDA, float32,bfloat16 on CPU)",
    )


def run(args: argparse.Namespace) -> int:
    from semtoken_lab.bench.cases import load_docs
    from semtoken_lab.bench.device import device_info, is_cuda, resolve_bench_device
    from semtoken_lab.bench.report import BenchResult, write_all
    from semtoken_lab.bench.synthetic import random_weights_info
    from semtoken_lab.bench.timing import limit_threads, machine_info

    if args.quick:  # tiny sizes, unless given explicitly
        for key, value in QUICK.items():
            if getattr(args, key) == DEFAULTS[key]:
                setattr(args, key, value)

    def pin() -> None:
        # Re-applied before each section: a BLAS library loaded later (scipy via the
        # baselines) starts with its own default thread count.
        if args.threads:
            limit_threads(args.threads)

    pin()
    device = resolve_bench_device(args.device)
    docs = load_docs(args.data)
    settings: dict[str, Any] = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if not k.startswith("_") and k != "out"
    }
    settings["out"] = str(args.out)
    res = BenchResult(
        command="semtoken-rag " + shlex.join(sys.argv[1:])
        if sys.argv[1:2] == ["bench"]
        else "semtoken-rag bench "
        + shlex.join(
            f"--{k.replace('_', '-')}={v}" for k, v in settings.items() if v not in (None, False)
        ),
        machine=machine_info(),
        settings=settings,
    )
    res.device = device_info(device)
    res.device["weights"] = {
        "encoder": random_weights_info(args.encoder_model) or "real",
        "reader": random_weights_info(args.reader) or "real",
    }
    print(f"[device] {res.device}", flush=True)

    def show(kind: str, row: Any) -> None:
        if kind == "encoder":
            print(
                f"[encoder] {row.dtype} batch {row.batch_size}: "
                f"{row.fingerprint_tokens_per_s:,.0f} tok/s fingerprints, "
                f"{row.raw_tokens_per_s:,.0f} tok/s raw forward",
                flush=True,
            )
        elif kind == "row":
            s = row.summary()
            print(
                f"[compression] {row.tokens} tokens: "
                + ", ".join(f"{k} {v:.3f}" for k, v in s.items()),
                flush=True,
            )
        else:
            print(
                f"[baseline] {row.method} {row.tokens} tokens: {row.ms:.0f} ms, "
                f"{row.over_cold:.1f}x cold, {row.over_warm_repeat:.0f}x warm",
                flush=True,
            )

    pin()
    if not args.skip_compression:
        from semtoken_lab.bench.compression import run_compression

        res.compression = run_compression(
            docs,
            _ints(args.sizes),
            args.repeats,
            ratio=args.ratio,
            on_row=show,
            device=device,
            encoder_model=args.encoder_model,
        )
        write_all(res, args.out)
    pin()
    if args.encoder:
        from semtoken_lab.bench.encoder import run_encoder

        dtypes = args.encoder_dtypes or (
            "float32,float16,bfloat16" if is_cuda(device) else "float32,bfloat16"
        )
        res.encoder = run_encoder(
            docs,
            device=device,
            tokens=args.encoder_tokens,
            batch_sizes=_ints(args.encoder_batch_sizes),
            dtypes=[d for d in dtypes.split(",") if d],
            repeats=args.repeats,
            encoder_model=args.encoder_model,
            on_row=show,
        )
        write_all(res, args.out)
    pin()
    if not args.skip_store:
        from semtoken_rag.store import CODECS

        from semtoken_lab.bench.store import run_store

        codecs = list(CODECS) if args.store_codecs == "all" else args.store_codecs.split(",")
        res.store = run_store(
            docs,
            contexts=args.store_contexts,
            device=device,
            encoder_model=args.encoder_model,
            codecs=codecs,
            data_root=args.data,
            on_row=lambda r: print(f"[store] {r.codec}: {r.bytes_per_1k_tokens:,.0f} B/1k tok"),
        )
        print(f"[store] warm speed-up {res.store.warm_speedup:.1f}x", flush=True)
        write_all(res, args.out)
    if args.store_scale:
        from semtoken_lab.bench.store_scale import run_store_scale

        run_store_scale(_ints(args.store_scale), args.out, data_root=args.data)
    pin()
    if not args.skip_reader:
        from semtoken_lab.bench.endtoend import run_endtoend

        def e2e_row(r: Any, info: dict[str, Any]) -> None:
            res.endtoend.append(r)
            res.reader = info
            print(
                f"[e2e] {r.context_tokens} tokens ratio {r.ratio}: TTFT x "
                f"{r.ttft_speedup_cold:.2f} cold / {r.ttft_speedup_warm:.2f} warm",
                flush=True,
            )
            write_all(res, args.out)

        _, res.reader = run_endtoend(
            docs,
            _ints(args.e2e_sizes),
            _floats(args.e2e_ratios),
            args.e2e_repeats,
            reader_name=args.reader,
            max_new_tokens=args.max_new_tokens,
            on_row=e2e_row,
            device=device,
            encoder_model=args.encoder_model,
            attn=args.attn,
        )
    pin()
    if res.compression is not None and not args.skip_baselines:
        # Last: LongLLMLingua alone can take minutes; every row is written as it arrives.
        from semtoken_lab.bench.compression import run_baselines

        def baseline_row(kind: str, row: Any) -> None:
            show(kind, row)
            write_all(res, args.out)

        run_baselines(
            docs,
            res.compression,
            args.repeats,
            ratio=args.ratio,
            lingua_max_tokens=args.lingua_max_tokens,
            on_row=baseline_row,
            methods=[m for m in args.baselines.split(",") if m],
            device=device,
            encoder_model=args.encoder_model,
            reader=args.reader,
        )
    res.machine = machine_info()
    paths = write_all(res, args.out)
    from semtoken_lab.bench.report import to_markdown

    print(to_markdown(res))
    for p in paths.values():
        print(f"wrote {p}")
    return 0
