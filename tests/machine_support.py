"""Helpers of the state-machine tests: building events, running them, replaying scenarios.

:func:`event` builds one event with a readable header; :func:`run` feeds events
through a machine, checking that ``apply`` leaves its input alone; :func:`replay`
runs a single-job golden scenario (P12 PBS, P13 Condor, P14 CREAM) directly
through one machine: each scenario event is built as an event object (enum names
-> members, ISO timestamps, source names) and after each step the ``expect``
fields are compared with :func:`lbtx.status.to_json` of the status.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from lbtx.events import make_event
from lbtx.jobid import JobId
from lbtx.schema import ENUMS, EVENTS_BY_NAME, Source
from lbtx.status import JobStatus, to_json
from lbtx.timeval import Timeval


#: Timestamps of test events are BASE_TIME + the ``t`` given to :func:`event`.
BASE_TIME = 1_330_000_000


def event(type_name: str, *, source, seq: str = "", t: int = 0, usec: int = 0,
          host: str = "host.example.org", instance: str | None = None, **attrs):
    """An event of ``type_name`` logged by ``source`` with code ``seq`` at BASE_TIME + t."""
    return make_event(type_name, source=source, seqcode=seq, timestamp=Timeval(BASE_TIME + t, usec),
                      host=host, src_instance=instance, user="/CN=test", **attrs)


def snapshot(status: JobStatus) -> dict:
    """Everything of a status, public and internal, as plain data."""
    return copy.deepcopy(to_json(status, internal=True))


def run(machine, status: JobStatus, *events) -> JobStatus:
    """Apply ``events`` in order; check each apply returns a new record and leaves
    its input unchanged."""
    for ev in events:
        before = snapshot(status)
        transition = machine.apply(status, ev)
        assert transition.status is not status
        assert tuple(transition.generated) == ()
        assert snapshot(status) == before, f"{ev.type_name} mutated the input status"
        status = transition.status
    return status


def _value(spec, value, jobs: dict):
    """A scenario attribute value as the event attribute's Python value."""
    if value is None:
        return None
    if spec.enum is not None:
        member = ENUMS[spec.enum].from_text(value)
        assert member is not None, f"unknown {spec.enum} value {value!r}"
        return member
    if spec.type == "jobid":
        return JobId.parse(jobs.get(value, value))
    if spec.type == "timeval":
        return Timeval.from_iso(value)
    if spec.type == "taglist":
        return tuple((str(k), str(v)) for k, v in value.items())
    return value


def build_event(scenario: dict, raw: dict):
    """The event object of one scenario step."""
    jobs, defaults = scenario["jobs"], scenario.get("defaults", {})
    specs = {a.name: a for a in EVENTS_BY_NAME[raw["type"]].attrs}
    attrs = {specs[k].py_name: _value(specs[k], v, jobs) for k, v in raw.get("attrs", {}).items()}
    return make_event(
        raw["type"],
        job_id=JobId.parse(jobs[raw["job"]]),
        source=Source.from_text(raw["source"]),
        seqcode=raw["seqcode"],
        timestamp=Timeval.from_iso(raw["timestamp"]),
        host=raw.get("host", defaults.get("host")),
        src_instance=raw.get("src_instance"),
        user=raw.get("user", defaults.get("user")),
        **attrs,
    )


def replay(path: Path, machine) -> list[tuple[int, str, object, object]]:
    """Run the scenario through ``machine``; return the mismatches
    ``(step, field, expected, actual)`` (empty when everything matches)."""
    scenario = json.loads(path.read_text())
    assert len(scenario["jobs"]) == 1, "only single-job scenarios replay directly"
    (alias, job), = scenario["jobs"].items()
    first = scenario["steps"][0]["event"]
    status = JobStatus(job_id=JobId.parse(job),
                       owner=first.get("user", scenario["defaults"]["user"]))
    mismatches = []
    for step in scenario["steps"]:
        status = run(machine, status, build_event(scenario, step["event"]))
        got = to_json(status)
        for field, want in step.get("expect", {}).get(alias, {}).items():
            if got.get(field) != want:
                mismatches.append((step["step"], field, want, got.get(field)))
    return mismatches
