"""Shared fixtures: where the project's reference material (``shared/``) lives.

The specification and the sample event streams sit in ``shared/`` beside the
repository (``../shared``), as they do on developer machines and in CI. A clone
of a local checkout made elsewhere (``git clone . /tmp/fresh``) finds it beside
the checkout it was cloned from. Set ``LBTX_SHARED`` to point elsewhere.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _origin_checkout() -> Path | None:
    """The local directory this repository was cloned from, if it was."""
    try:
        url = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if url.startswith("file://"):
        url = url[len("file://"):]
    if not url or "://" in url or (":" in url and not url.startswith("/")):
        return None  # a remote URL (https://..., host:path)
    path = (REPO / url).resolve()
    return path if path.is_dir() else None


def _has_spec(path: Path) -> bool:
    return (path / "spec" / "lb-schema.json").is_file()


def shared_dir() -> Path:
    env = os.environ.get("LBTX_SHARED")
    if env:
        candidates = [Path(env)]
    else:
        candidates = [REPO.parent / "shared"]
        origin = _origin_checkout()
        if origin is not None:
            candidates.append(origin.parent / "shared")
    for path in candidates:
        if _has_spec(path):
            return path
    raise RuntimeError(
        f"reference material not found at {', '.join(map(str, candidates))}: "
        "set LBTX_SHARED to the shared/ folder")


SHARED = shared_dir()
SPEC = SHARED / "spec"
SCENARIOS = SPEC / "scenarios"
ULM_DATA = SHARED / "data" / "ulm"


@pytest.fixture
def shared() -> Path:
    return SHARED


# A private PostgreSQL server for the store tests (started on first use, stopped at the end).
from pgcluster import pg_cluster, pg_dsn  # noqa: E402,F401


def pytest_collection_modifyitems(config, items):
    """Modules holding a test marked ``slow`` run first (in their order), the others
    after them (in theirs). With workers (``-n``, as scripts/test runs the suite),
    whole modules go to a worker in this order, so the minute-long tests start at
    once instead of lengthening the tail of the run. The order is a function of the
    collected items alone: every worker must see the same one."""
    slow_modules = {item.nodeid.split("::", 1)[0] for item in items
                    if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in slow_modules)
