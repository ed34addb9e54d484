"""The sections of one ``semtoken-rag bench`` run (options: :mod:`semtoken_lab.cli.bench`).

Each section runs only when its options ask for it, and rewrites the three reports when it
ends (the slow ones after every row), so an interrupted run still leaves what it measured.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from semtoken_lab.bench.cases import Doc
    from semtoken_lab.bench.result import BenchResult


def _ints(text: str) -> list[int]:
    """The integers of a list option (kept as text by the parser, see ``--quick``)."""
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    """The numbers of a list option (kept as text by the parser, see ``--quick``)."""
    return [float(x) for x in text.split(",") if x.strip()]


@dataclass
class _Bench:
    """What every section of one run shares: the options, the report so far, the corpus."""

    args: argparse.Namespace
    res: BenchResult
    docs: list[Doc]
    device: str

    def save(self) -> dict[str, Path]:
        """Rewrite ``bench.json``, ``bench.md`` and ``bench.png``; returns their paths."""
        from semtoken_lab.bench.report import write_all

        return write_all(self.res, self.args.out)


def run_sections(args: argparse.Namespace) -> int:
    """Run the enabled sections in order, then print the report and the files written."""
    from semtoken_lab.bench.cases import load_docs
    from semtoken_lab.bench.device import resolve_bench_device
    from semtoken_lab.bench.report_markdown import to_markdown
    from semtoken_lab.bench.timing import machine_info

    _pin_threads(args.threads)
    device = resolve_bench_device(args.device)
    docs = load_docs(args.data)
    bench = _Bench(args, _new_result(args, device), docs, device)
    print(f"[device] {bench.res.device}", flush=True)
    for section in _SECTIONS:
        _pin_threads(args.threads)
        section(bench)
    bench.res.machine = machine_info()
    paths = bench.save()
    print(to_markdown(bench.res))
    for p in paths.values():
        print(f"wrote {p}")
    return 0


def _pin_threads(threads: int | None) -> None:
    """Apply ``--threads`` (before each section).

    Why again and again: a BLAS library loaded later (scipy via the baselines) starts with its
    own default thread count.
    """
    if threads:
        from semtoken_lab.bench.timing import limit_threads

        limit_threads(threads)


def _new_result(args: argparse.Namespace, device: str) -> BenchResult:
    """The report before any section: command line, settings, machine, device and weights."""
    from semtoken_lab.bench.device import device_info
    from semtoken_lab.bench.result import BenchResult
    from semtoken_lab.bench.synthetic import random_weights_info
    from semtoken_lab.bench.timing import machine_info

    settings: dict[str, Any] = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if not k.startswith("_") and k != "out"
    }
    settings["out"] = str(args.out)
    res = BenchResult(command=_command_line(settings), machine=machine_info(), settings=settings)
    res.device = device_info(device)
    res.device["weights"] = {
        "encoder": random_weights_info(args.encoder_model) or "real",
        "reader": random_weights_info(args.reader) or "real",
    }
    return res


def _command_line(settings: dict[str, Any]) -> str:
    """The command that reproduces the run: as typed, or rebuilt from the settings when ``run``
    was called with a namespace of its own (not from the ``bench`` command line)."""
    if sys.argv[1:2] == ["bench"]:
        return "semtoken-rag " + shlex.join(sys.argv[1:])
    flags = (f"--{k.replace('_', '-')}={v}" for k, v in settings.items() if v not in (None, False))
    return "semtoken-rag bench " + shlex.join(flags)


def _print_row(kind: str, row: Any) -> None:
    """One progress line per measured row (``kind``: ``encoder``, ``row`` or a baseline's)."""
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


def _compression(bench: _Bench) -> None:
    """Compression cost per workload size: core, warm and cold (unless ``--skip-compression``)."""
    args = bench.args
    if args.skip_compression:
        return
    from semtoken_lab.bench.compression import run_compression

    bench.res.compression = run_compression(
        bench.docs,
        _ints(args.sizes),
        args.repeats,
        ratio=args.ratio,
        on_row=_print_row,
        device=bench.device,
        encoder_model=args.encoder_model,
    )
    bench.save()


def _encoder(bench: _Bench) -> None:
    """Encoder throughput per dtype and batch size (opt-in: ``--encoder``)."""
    args = bench.args
    if not args.encoder:
        return
    from semtoken_lab.bench.device import is_cuda
    from semtoken_lab.bench.encoder import run_encoder

    dtypes = args.encoder_dtypes or (
        "float32,float16,bfloat16" if is_cuda(bench.device) else "float32,bfloat16"
    )
    bench.res.encoder = run_encoder(
        bench.docs,
        device=bench.device,
        tokens=args.encoder_tokens,
        batch_sizes=_ints(args.encoder_batch_sizes),
        dtypes=[d for d in dtypes.split(",") if d],
        repeats=args.repeats,
        encoder_model=args.encoder_model,
        on_row=_print_row,
    )
    bench.save()


def _store(bench: _Bench) -> None:
    """The fingerprint store per codec (unless ``--skip-store``), then ``--store-scale``."""
    args = bench.args
    if not args.skip_store:
        from semtoken_rag.store import CODECS

        from semtoken_lab.bench.store import run_store

        codecs = list(CODECS) if args.store_codecs == "all" else args.store_codecs.split(",")
        bench.res.store = run_store(
            bench.docs,
            contexts=args.store_contexts,
            device=bench.device,
            encoder_model=args.encoder_model,
            codecs=codecs,
            data_root=args.data,
            on_row=lambda r: print(f"[store] {r.codec}: {r.bytes_per_1k_tokens:,.0f} B/1k tok"),
        )
        print(f"[store] warm speed-up {bench.res.store.warm_speedup:.1f}x", flush=True)
        bench.save()
    if args.store_scale:
        from semtoken_lab.bench.store_scale import run_store_scale

        run_store_scale(_ints(args.store_scale), args.out, data_root=args.data)


def _endtoend(bench: _Bench) -> None:
    """The reader's time to first token, full against compressed (unless ``--skip-reader``)."""
    args = bench.args
    if args.skip_reader:
        return
    from semtoken_lab.bench.endtoend import run_endtoend

    def on_row(r: Any, info: dict[str, Any]) -> None:
        bench.res.endtoend.append(r)
        bench.res.reader = info
        print(
            f"[e2e] {r.context_tokens} tokens ratio {r.ratio}: TTFT x "
            f"{r.ttft_speedup_cold:.2f} cold / {r.ttft_speedup_warm:.2f} warm",
            flush=True,
        )
        bench.save()

    _, bench.res.reader = run_endtoend(
        bench.docs,
        _ints(args.e2e_sizes),
        _floats(args.e2e_ratios),
        args.e2e_repeats,
        reader_name=args.reader,
        max_new_tokens=args.max_new_tokens,
        on_row=on_row,
        device=bench.device,
        encoder_model=args.encoder_model,
        attn=args.attn,
    )


def _baselines(bench: _Bench) -> None:
    """The baselines on the compression workloads (they need them; ``--skip-baselines``).

    Last, and saved after every row: LongLLMLingua alone can take minutes.
    """
    args = bench.args
    if bench.res.compression is None or args.skip_baselines:
        return
    from semtoken_lab.bench.compression import run_baselines

    def on_row(kind: str, row: Any) -> None:
        _print_row(kind, row)
        bench.save()

    run_baselines(
        bench.docs,
        bench.res.compression,
        args.repeats,
        ratio=args.ratio,
        lingua_max_tokens=args.lingua_max_tokens,
        on_row=on_row,
        methods=[m for m in args.baselines.split(",") if m],
        device=bench.device,
        encoder_model=args.encoder_model,
        reader=args.reader,
    )


#: The sections in the order they run (threads pinned again before each).
_SECTIONS = (_compression, _encoder, _store, _endtoend, _baselines)
