"""Every golden scenario, step by step, through the path of ``lbtx replay --trace --json``.

Each scenario's events are rendered as ULM records, read back by the replay
engine, and accepted by the server's acceptance rules and state machines; the JSON
trace lines are what ``lbtx replay --trace --json`` prints. After every step the
delivery outcome, the generated events and every expected status field are checked.
"""

from __future__ import annotations

import io

import pytest

from conftest import SCENARIOS
from lbtx.cli.replay import trace_records
from lbtx.replay import Replay

from scenario_support import expected_value, load, scenario_lines

SCENARIO_FILES = sorted(SCENARIOS.glob("*.json"))


def test_scenarios_present():
    """The public scenario catalogue is where the tests expect it."""
    assert len(SCENARIO_FILES) >= 14


def _full_histogram(current: dict, parent_id: str) -> dict:
    counts: dict[str, int] = {}
    for job in current.values():
        if job.get("parent_job") == parent_id:
            counts[job["state"]] = counts.get(job["state"], 0) + 1
    return counts


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_scenario(path):
    """All steps of the scenario give the expected deliveries, events and fields."""
    scenario = load(path)
    jobs = scenario["jobs"]
    replay = Replay()
    text = "".join(scenario_lines(scenario))
    steps = replay.feed_stream(io.StringIO(text), path.name)
    current: dict[str, dict] = {}
    failures = []
    for spec_step, step in zip(scenario["steps"], steps, strict=True):
        n = spec_step["step"]
        records = trace_records(step)
        for rec in records:
            for job_id, status in rec["statuses"].items():
                current[job_id] = status
        want_delivery = spec_step.get("delivery", "stored")
        if records[0]["delivery"] != want_delivery:
            failures.append(f"step {n}: delivery {records[0]['delivery']!r}, want {want_delivery!r}")
        want_gen = spec_step.get("generates", [])
        got_gen = [r for r in records if r.get("generated")]
        if len(got_gen) != len(want_gen):
            failures.append(f"step {n}: {len(got_gen)} generated events, want {len(want_gen)}")
        for want, got in zip(want_gen, got_gen):
            if got["jobid"] != jobs[want["job"]] or got["event"] != want["type"]:
                failures.append(f"step {n}: generated {got['event']} for {got['jobid']}")
            if got["source"] != want["source"] or got["seqcode"] != want["seqcode"]:
                failures.append(f"step {n}: generated source/seqcode {got['source']} {got['seqcode']}")
            for k, v in want.get("attrs", {}).items():
                gv = got["attrs"].get(k)
                if k == "child":
                    v = jobs.get(v, v)
                if gv != v:
                    failures.append(f"step {n}: generated attr {k} = {gv!r}, want {v!r}")
        for alias, fields in (spec_step.get("expect") or {}).items():
            job_id = jobs[alias]
            got = current.get(job_id)
            if got is None:
                failures.append(f"step {n}: no status for {alias}")
                continue
            for field, want in fields.items():
                want = expected_value(field, want, jobs)
                if field == "children_hist_full":
                    value = _full_histogram(current, job_id)
                else:
                    value = got.get(field, "<missing field>")
                if value != want:
                    failures.append(f"step {n}: {alias}.{field} = {value!r}, want {want!r}")
    assert not failures, f"{path.name}:\n" + "\n".join(failures)
    assert not replay.bad

