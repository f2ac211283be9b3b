"""Turning golden scenario files into ULM records and checking expectations.

A scenario (spec/scenarios/README.md) lists events by job alias with attributes in
their JSON form; :func:`scenario_lines` renders each as the ULM record a producer
would log, so that the scenarios run through exactly the path of ``lbtx replay``.
"""

from __future__ import annotations

import json
from pathlib import Path

from lbtx import ulm
from lbtx.events import make_event
from lbtx.jobid import JobId
from lbtx.schema import ENUMS, EVENTS_BY_NAME, Level, Source
from lbtx.timeval import Timeval


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def _attr_value(spec, value, jobs):
    if value is None:
        return None
    if spec.type == "logsrc":
        return Source.from_text(value)
    if spec.enum is not None:
        member = ENUMS[spec.enum].from_text(value)
        if member is None:
            raise ValueError(f"scenario uses unknown {spec.enum} value {value!r}")
        return member
    if spec.type == "jobid":
        return JobId.parse(jobs.get(value, value)) if value != "" else None
    if spec.type == "taglist":
        return tuple(value.items()) if value else None
    if spec.type == "double":
        return float(value)
    if spec.type == "timeval":
        return Timeval.from_iso(value)
    return value


def scenario_event(scenario: dict, ev: dict):
    jobs = scenario["jobs"]
    defaults = scenario.get("defaults", {})
    spec = EVENTS_BY_NAME[ev["type"]]
    attrs = {}
    by_name = {a.name: a for a in spec.attrs}
    for name, value in (ev.get("attrs") or {}).items():
        a = by_name[name]
        attrs[a.py_name] = _attr_value(a, value, jobs)
    return make_event(
        ev["type"],
        timestamp=Timeval.from_iso(ev["timestamp"]),
        host=ev.get("host", defaults.get("host", "")),
        level=Level.SYSTEM,
        priority=0,
        source=Source.from_text(ev["source"]),
        src_instance=ev.get("src_instance") or None,
        job_id=JobId.parse(jobs[ev["job"]]),
        seqcode=ev["seqcode"],
        user=ev.get("user", defaults.get("user")),
        **attrs,
    )


def scenario_lines(scenario: dict) -> list[str]:
    """One ULM record per step, in step order."""
    return [ulm.format(scenario_event(scenario, s["event"])) for s in scenario["steps"]]


def expected_value(field: str, value, jobs: dict):
    """Map aliases in expectations to job ids."""
    if field == "parent_job" and value is not None:
        return jobs.get(value, value)
    return value
