"""Same-architecture models with random weights, for a machine the real weights cannot reach.

Why: the GPU machine is reached through a 64 MiB carry with no network, and the packaged
MiniLM (91 MB fp32) and SmolLM2 GGUF (94 MB) do not fit beside the FAISS GPU wheel.  Speed does
not depend on the weights' values, and agreement checks (fp16 vs fp32, forced flash vs eager,
GPU vs CPU) need only the *same* weights on both paths, so the GPU run builds each model from
its real config and tokenizer with seeded random weights.  Every such folder holds
:data:`MARKER`, and reports that load one say "random weights".

Two steps, both on the command line (``python -m semtoken_lab.bench.synthetic``):

* ``export`` (here, with the packaged models installed): config and tokenizer files of the
  encoder and the reader, and a small NarrativeQA subset for the benchmark workloads, into an
  assets folder (git-ignored, carried);
* ``build`` (there): seeded random weights for both, saved as ordinary Hugging Face folders
  (the encoder also as a sentence-transformers folder, for the embed-filter baseline).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: File written into every random-weight model folder.
MARKER = "RANDOM_WEIGHTS.json"
ENCODER_DIR = "minilm"
READER_DIR = "smollm2"
DATA_DIR = "data"
#: Config, tokenizer and sentence-transformers files copied per model (those that exist).
ENCODER_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)
READER_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
#: The data file the benchmark workloads are read from (:func:`semtoken_lab.bench.cases.load_docs`).
DATA_FILE = "narrativeqa/test.jsonl"


def _copy(src: Path, dst: Path, names: Sequence[str]) -> list[str]:
    copied = []
    for name in names:
        if (src / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, dst / name)
            copied.append(name)
    if "config.json" not in copied:
        raise FileNotFoundError(f"no config.json in {src}")
    return copied


def export_data(data_dir: Path, out: Path) -> int:
    """First row of every distinct NarrativeQA context (id, context, question, answers), and
    the store benchmark's codec training corpus (copied as is, 0.7 MB).

    Returns:
        NarrativeQA rows written.
    """
    from semtoken_lab.bench.codec_training import TRAIN_CORPUS

    corpus = out / DATA_DIR / TRAIN_CORPUS
    corpus.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_dir / TRAIN_CORPUS, corpus)
    seen: set[str] = set()
    rows = []
    with (data_dir / DATA_FILE).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("context") and row["context"] not in seen:
                seen.add(row["context"])
                rows.append({k: row.get(k) for k in ("id", "context", "question", "answers")})
    target = out / DATA_DIR / DATA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def export_assets(out: Path, data_dir: Path | None = None) -> dict[str, Any]:
    """Config + tokenizer files of the packaged encoder and reader, and the data subset.

    Raises:
        ModelNotFoundError: a packaged model is not installed here.
    """
    from semtoken_rag.errors import ModelNotFoundError
    from semtoken_rag.models import ENCODER_PIP, packaged_encoder_dir

    from semtoken_lab.bench.cases import DEFAULT_DATA
    from semtoken_lab.reader.loading import resolve_reader

    enc = packaged_encoder_dir()
    if enc is None:
        raise ModelNotFoundError(f"the packaged encoder is not installed; run `{ENCODER_PIP}`")
    reader_dir, _ = resolve_reader("smollm2")
    out.mkdir(parents=True, exist_ok=True)
    info = {
        ENCODER_DIR: _copy(enc, out / ENCODER_DIR, ENCODER_FILES),
        READER_DIR: _copy(Path(reader_dir), out / READER_DIR, READER_FILES),
        "data_rows": export_data(Path(data_dir or DEFAULT_DATA), out),
    }
    (out / "assets.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def _marker(folder: Path, seed: int, source: Path, dtype: str) -> None:
    (folder / MARKER).write_text(
        json.dumps({"weights": "random", "seed": seed, "config_from": str(source), "dtype": dtype})
        + "\n",
        encoding="utf-8",
    )


def _spread(model: Any) -> None:
    """Zero BERT's token-type embedding (one vector added to every token).

    Why: at random init that shared vector is as large as each token's own embedding, so all
    word fingerprints lean one way, every sentence looks like a near-duplicate of every other,
    and compression collapsed to 14% kept at ratio 0.5 (measured on 3 NarrativeQA summaries).
    Without it random word vectors are nearly orthogonal (mean cosine 0.03; the real MiniLM's
    is 0.18) and the engine keeps 0.48-0.50, so the core does its usual amount of work.
    """
    import torch

    tte = getattr(getattr(model, "embeddings", None), "token_type_embeddings", None)
    if tte is not None:
        with torch.no_grad():
            tte.weight.zero_()


def build_model(source: Path, target: Path, *, causal_lm: bool, seed: int = 0) -> Path:
    """A model of ``source``'s config with seeded random weights, saved with its tokenizer.

    The encoder is saved in fp32 (its weights are 23M parameters); the reader in bf16, as the
    engine's GGUF conversion saves it.  Idempotent: an existing complete folder is kept.
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    if (target / MARKER).is_file():
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    config = AutoConfig.from_pretrained(source, local_files_only=True)
    cls = AutoModelForCausalLM if causal_lm else AutoModel
    dtype = torch.bfloat16 if causal_lm else torch.float32
    # The seed holds for this model's initialisation only: the caller's random stream is
    # restored afterwards (fork_rng), so building a model never reseeds the process.
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # CPU init: the CPU stream only
        model = cls.from_config(config, dtype=dtype)
    _spread(model)
    model.save_pretrained(tmp)
    _marker(tmp, seed, source, str(dtype).replace("torch.", ""))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    logger.info("random-weight model (seed %d) from %s at %s", seed, source, target)
    return target


def build_models(assets: Path, out: Path, seed: int = 0) -> dict[str, Path]:
    """Random-weight encoder and reader folders from :func:`export_assets`'s folder."""
    out.mkdir(parents=True, exist_ok=True)
    return {
        ENCODER_DIR: build_model(
            assets / ENCODER_DIR, out / ENCODER_DIR, causal_lm=False, seed=seed
        ),
        READER_DIR: build_model(assets / READER_DIR, out / READER_DIR, causal_lm=True, seed=seed),
    }


def random_weights_info(model_path: str | Path | None) -> dict[str, Any] | None:
    """The marker of a random-weight folder, or ``None`` for real weights / a model id."""
    if model_path is None:
        return None
    marker = Path(model_path) / MARKER
    if not marker.is_file():
        return None
    data: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semtoken_lab.bench.synthetic")
    sub = parser.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="copy configs, tokenizers and a data subset")
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--data", type=Path, default=None)
    bd = sub.add_parser("build", help="random-weight models from an assets folder")
    bd.add_argument("--assets", type=Path, required=True)
    bd.add_argument("--out", type=Path, required=True)
    bd.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cmd == "export":
        print(json.dumps(export_assets(args.out, args.data)))
    else:
        print(
            json.dumps(
                {k: str(v) for k, v in build_models(args.assets, args.out, args.seed).items()}
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
