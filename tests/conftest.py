"""Shared fixtures: where the project's reference material (``shared/``) lives.

The specification and the sample event streams sit in ``shared/`` beside the
repository (``../shared``), as they do on developer machines and in CI. Set
``LBTX_SHARED`` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    env = os.environ.get("LBTX_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    if not (path / "spec" / "lb-schema.json").is_file():
        raise RuntimeError(
            f"reference material not found at {path}: set LBTX_SHARED to the shared/ folder"
        )
    return path


SHARED = shared_dir()
SPEC = SHARED / "spec"
SCENARIOS = SPEC / "scenarios"
ULM_DATA = SHARED / "data" / "ulm"


@pytest.fixture
def shared() -> Path:
    return SHARED


# A private PostgreSQL server for the store tests (started on first use, stopped at the end).
from pgcluster import pg_cluster, pg_dsn  # noqa: E402,F401
