from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gpu-rehearsal",
        action="store_true",
        help="also run the GPU check's CPU rehearsal (tests/test_gpu_check.py: wheels, random-"
        "weight models, the device script end to end; minutes): before a device session or "
        "after changing scripts/gpu_check.sh",
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests needing it are skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present beside the repository")
    return SHARED_DATA


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return rows


@pytest.fixture(scope="session")
def narrativeqa(shared_data: Path) -> list[dict]:
    """First 50 NarrativeQA examples (context + question + answers)."""
    return read_jsonl(shared_data / "narrativeqa" / "test.jsonl", limit=50)


@pytest.fixture(scope="session")
def real_compressor():
    """One real-MiniLM compressor shared by the session (model loads once)."""
    from semtoken_rag import Compressor, SemTokenConfig

    return Compressor(SemTokenConfig())


def real_variant(real, **overrides):
    """A compressor with ``SemTokenConfig(**overrides)`` sharing ``real``'s encoder, store and
    counter (no second model load)."""
    from semtoken_rag import Compressor, SemTokenConfig

    return Compressor(
        SemTokenConfig(**overrides), encoder=real.encoder, store=real.store, counter=real.counter
    )


def run_example(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<script> <args>`` in a fresh interpreter from the repository root."""
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        cwd=ROOT,
    )


#: Tests that start, join or must run without this process's Ray: one pytest-xdist group, so
#: under ``-n 2 --dist loadgroup`` (scripts/test.sh) they run in one worker and share its local
#: Ray instead of each worker starting a cluster on the same 2 cores.
RAY_FIXTURES = frozenset({"ray_local", "no_ray_session"})


def _uses_ray(item: pytest.Item) -> bool:
    return item.get_closest_marker("ray") is not None or bool(RAY_FIXTURES & set(item.fixturenames))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every Ray test in the ``ray`` xdist group, and run the tests that need this process
    without a Ray (fixture ``no_ray_session`` of tests/test_ray_errors.py: an address is used
    only where none runs) just before the first test of the shared one (``ray_local``), in
    their own order: in file order they would stop it, and the next module would start it
    again (about 10 s on 2 cores, its first encoder tasks included).  Nothing else moves."""
    for item in items:
        if _uses_ray(item):
            item.add_marker(pytest.mark.xdist_group("ray"))
    first = next((i for i, item in enumerate(items) if "ray_local" in item.fixturenames), None)
    if first is None:
        return
    moved = [item for item in items[first:] if "no_ray_session" in item.fixturenames]
    ids = {id(item) for item in moved}
    rest = [item for item in items[first:] if id(item) not in ids]
    items[first:] = moved + rest


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a Ray test that pytest-xdist did not group under ``--dist loadgroup``: the tests
    would pass, but both workers would start a local Ray on the 2 cores and repeat the module
    fixtures (pytest 9.2 with pytest-xdist 3.8 did that silently, and CI ran minutes longer)."""
    grouped = "@" in item.nodeid or not getattr(item.config.option, "loadgroup", False)
    if not grouped and _uses_ray(item):
        pytest.fail(
            f"pytest-xdist did not group {item.nodeid} with the Ray tests (no @ray suffix): "
            "this pytest and pytest-xdist do not work together (pytest-dev/pytest-xdist#1386); "
            "install the versions pyproject.toml's dev extra allows",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def ray_local():
    """The session's local Ray of 2 CPUs (``tests.ray_helpers.shared_local_ray``)."""
    from tests.ray_helpers import shared_local_ray

    return shared_local_ray()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared Ray at the end of a module when the next test needs none: an idle local
    Ray (raylet, GCS and the warm workers of ``tests.ray_helpers``) keeps about a fifth of a
    core busy, which the other half of a CI run paid for after the Ray group.  (At a module's
    end only: ``ray_local`` is module-scoped; the next Ray module starts it again.)"""
    if "ray" not in sys.modules or nextitem is None:  # nothing to stop / the session's end
        return
    if nextitem.path != item.path and not _uses_ray(nextitem):
        from tests.ray_helpers import stop_local_ray

        stop_local_ray()


@pytest.fixture(scope="session", autouse=True)
def _stop_ray_at_the_end():
    """Stop the Ray the Ray tests shared, once the session is over (nothing if none ran)."""
    yield
    from tests.ray_helpers import stop_local_ray

    stop_local_ray()
