"""Helpers for the query backend and JSON API tests: a real SQLite store holding
every public scenario, the statuses ``lbtx replay`` computes for the same events,
and the identities of the scenarios."""

from __future__ import annotations

import pytest

from conftest import SCENARIOS
from lbtx import ulm
from lbtx.acceptance import MemoryJobTable
from lbtx.protocols.legacy_query.errors import LBError
from lbtx.replay import Replay
from lbtx.server.store import open_store

from scenario_support import load, scenario_lines

SCENARIO_FILES = sorted(SCENARIOS.glob("*.json"))
#: the owner of every scenario job
ALICE = "/DC=org/DC=example/O=Example Grid/CN=Alice Tester"
#: given READ on the P09 job by its ChangeACL event
BOB = "/DC=org/DC=example/O=Example Grid/CN=Bob Reviewer"
CAROL = "/DC=org/DC=example/O=Example Grid/CN=Carol Nobody"


def all_lines() -> list[str]:
    """Every scenario's ULM lines, scenario after scenario."""
    lines = []
    for path in SCENARIO_FILES:
        lines += scenario_lines(load(path))
    return lines


def replay_of(lines) -> Replay:
    """``lbtx replay`` of the lines, keeping the events."""
    replay = Replay()
    replay.table = MemoryJobTable(keep_events=True)
    for line in lines:
        replay.feed(ulm.parse(line, require_user=True))
    return replay


async def loaded_store(path, reactor, lines):
    """A started SQLite store at ``path`` fed ``lines`` through accept_events."""
    store = open_store("sqlite:///" + str(path), reactor)
    await store.start()
    outcomes = await store.accept_events([ulm.parse(ln, require_user=True) for ln in lines], lines)
    assert len(outcomes) == len(lines)
    return store


async def error_of(d) -> LBError:
    """The LBError a Deferred fails with."""
    with pytest.raises(LBError) as e:
        await d
    return e.value


def job_of(replay: Replay, stem: str, alias: str | None = None):
    """The record of job ``alias`` (default: the first) of scenario ``stem`` (``P09``...)."""
    path = next(p for p in SCENARIO_FILES if p.name.startswith(stem))
    jobs = load(path)["jobs"]
    job_id = jobs[alias] if alias else next(iter(jobs.values()))
    return next(rec for rec in replay.jobs() if str(rec.job_id) == job_id)
