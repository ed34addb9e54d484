"""``semtoken-rag bench``: what compression costs against the reader work it saves.

Writes ``bench.json``, ``bench.md`` and ``bench.png`` into ``--out`` (rewritten after every
section, so an interrupted run still leaves a report).  Targets are reported, never asserted.

This module only declares the options (it is imported for every ``--help``); the sections run
in :mod:`semtoken_lab.cli.bench_sections`.
"""

from __future__ import annotations

import argparse
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
#: The on/off switches of the sections, ``(flag, help)``.
_SWITCHES = (
    ("--skip-reader", "no end-to-end reader run"),
    ("--skip-baselines", "no embed-filter / LongLLMLingua"),
    ("--skip-store", "no fingerprint store run"),
    ("--skip-compression", "no compression cost run (core/warm/cold)"),
    ("--quick", "tiny sizes, one repeat (smoke)"),
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options, group by group in the order ``--help`` lists them."""
    _add_compression_options(parser)
    for flag, help_text in _SWITCHES:
        parser.add_argument(flag, action="store_true", help=help_text)
    parser.add_argument("--data", type=Path, default=None, help="data root (../shared/data)")
    _add_endtoend_options(parser)
    _add_store_options(parser)
    _add_device_options(parser)
    _add_encoder_options(parser)


def _add_compression_options(parser: argparse.ArgumentParser) -> None:
    """The output folder and the workloads of the compression cost section.

    The list options keep their text (``keep_text``) so that ``--quick`` can tell a default
    from the same value given explicitly.
    """
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


def _add_endtoend_options(parser: argparse.ArgumentParser) -> None:
    """The reader's end-to-end workloads, and the largest one LongLLMLingua is timed on."""
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


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    """The fingerprint store section, and the optional run of the store at scale."""
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


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    """Where every section runs and with which models (shared, so the sections compare)."""
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


def _add_encoder_options(parser: argparse.ArgumentParser) -> None:
    """The encoder throughput section (opt-in: ``--encoder``)."""
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


def _apply_quick(args: argparse.Namespace) -> None:
    """``--quick``: shrink the workloads still at their default (explicit values win)."""
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == DEFAULTS[key]:
                setattr(args, key, value)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark sections the options enable and print the report."""
    from semtoken_lab.cli.bench_sections import run_sections

    _apply_quick(args)
    return run_sections(args)
