"""Helpers for the job store tests: workloads with fresh job ids, the statuses
``lbtx replay`` computes for them, and store factories for both backends."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SCENARIOS
from lbtx import ulm
from lbtx.acceptance import MemoryJobTable
from lbtx.jobid import JobId
from lbtx.replay import Replay
from lbtx.server.store.postgres import PostgresJobStore
from lbtx.server.store.sqlite import SQLiteJobStore
from lbtx.status import to_json

from scenario_support import load, scenario_lines

SCENARIO_FILES = sorted(SCENARIOS.glob("*.json"))
SERVER = "lb.example.org:9000"


def parse(line: str):
    return ulm.parse(line, require_user=True)


def stamped(scenario: dict) -> list[str]:
    """The scenario's ULM lines with fresh job ids; subjob ids are re-derived from
    the fresh parent id so that registrations still create them."""
    lines = scenario_lines(scenario)
    mapping: dict[str, str] = {}
    for line in lines:
        ev = parse(line)
        if ev.type_name == "RegJob" and (ev.nsubjobs or 0) > 0 and str(ev.job_id) not in mapping:
            new = JobId.generate(SERVER)
            mapping[str(ev.job_id)] = str(new)
            for old_sub, new_sub in zip(ev.job_id.subjobs(ev.seed, ev.nsubjobs),
                                        new.subjobs(ev.seed, ev.nsubjobs)):
                mapping[str(old_sub)] = str(new_sub)
    for job_id in scenario["jobs"].values():
        mapping.setdefault(job_id, str(JobId.generate(SERVER)))
    out = []
    for line in lines:
        for old, new in mapping.items():
            line = line.replace(old, new)
        out.append(line)
    return out


def workload(copies: int) -> list[list[str]]:
    """``copies`` stamped copies of every scenario: one list of lines per job family."""
    return [stamped(load(path)) for _ in range(copies) for path in SCENARIO_FILES]


def replayed(lines: list[str]) -> Replay:
    """``lbtx replay`` of the lines, keeping the stored events too."""
    replay = Replay()
    replay.table = MemoryJobTable(keep_events=True)
    for line in lines:
        replay.feed(parse(line))
    return replay


def statuses(records) -> dict[str, dict]:
    """job id -> the JSON status (with the machines' bookkeeping) of each record."""
    return {str(r.job_id): to_json(r.status, internal=True) for r in records}


def record_summary(rec) -> dict:
    """What a record holds besides its status, comparably."""
    return {"owner": rec.owner, "acl": [list(e) for e in rec.acl],
            "children": [str(c) for c in rec.children], "nevents": rec.nevents}


def diff(got: dict, want: dict) -> dict:
    """Fields that differ between two JSON statuses."""
    keys = set(got) | set(want)
    return {k: (got.get(k), want.get(k)) for k in sorted(keys) if got.get(k) != want.get(k)}


class Backend:
    """Makes store instances over one database (a file, or a PostgreSQL database)."""

    def __init__(self, name: str, target: str, reactor, **options):
        self.name = name
        self.target = target
        self.reactor = reactor
        self.options = options

    def make(self, **options):
        kw = dict(self.options, **options)
        if self.name == "sqlite":
            return SQLiteJobStore(self.target, self.reactor, **kw)
        return PostgresJobStore(self.target, self.reactor, **kw)


def scenario_path(stem: str) -> Path:
    return SCENARIOS / f"{stem}.json"


def pretty(value) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)[:4000]
