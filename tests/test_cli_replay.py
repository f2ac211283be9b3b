"""``lbtx replay`` as a user runs it: a real process, real files, its output and exit status."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, SCENARIOS, ULM_DATA
from scenario_support import load, scenario_lines

SIMPLE = [str(ULM_DATA / "perf_simple_avg_events.reg.log"), str(ULM_DATA / "perf_simple_avg_events.log")]
SIMPLE_ID = "https://devel15.cnaf.infn.it:9000/rReV1TpJ5oY0Z1_M4NBfHw"


def lbtx(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "lbtx.cli.main", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_real_simple_job_ends_cleared():
    """The recorded average simple job replays to one job in state Cleared."""
    r = lbtx("replay", *SIMPLE)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["JOBID", "TYPE", "STATE"]
    assert len(lines) == 2
    assert lines[1].split()[:4] == [SIMPLE_ID, "SIMPLE", "Cleared", "OK"]


def test_json_output_has_schema_field_names():
    """--json prints one object per job keyed by the status field names plus jobid."""
    r = lbtx("replay", "--json", *SIMPLE)
    assert r.returncode == 0, r.stderr
    objs = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(objs) == 1
    schema = json.loads((SCENARIOS.parent / "lb-schema.json").read_text())
    names = {f["name"] for f in schema["job_status"]["fields"]}
    assert set(objs[0]) == names | {"jobid"}
    assert objs[0]["jobid"] == SIMPLE_ID and objs[0]["state"] == "Cleared"
    assert objs[0]["jobtype"] == "SIMPLE" and objs[0]["done_code"] == "OK"


def test_trace_json_one_line_per_event_with_generated_events(tmp_path):
    """--trace --json: a line per input event, generated CollectionState lines flagged."""
    scenario = load(SCENARIOS / "P11-collection-state-from-children.json")
    path = tmp_path / "coll.ulm"
    path.write_text("".join(scenario_lines(scenario)))
    r = lbtx("replay", "--trace", "--json", str(path))
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    inputs = [x for x in recs if not x.get("generated")]
    assert [x["step"] for x in inputs] == list(range(1, len(scenario["steps"]) + 1))
    assert all(set(x) >= {"step", "jobid", "event", "delivery", "statuses"} for x in recs)
    gen = [x for x in recs if x.get("generated")]
    assert gen and all(x["event"] == "CollectionState" for x in gen)
    want_steps = [s["step"] for s in scenario["steps"] for _ in s.get("generates", [])]
    assert [x["step"] for x in gen] == want_steps
    # the registration line holds the parent and its three embryonic subjobs
    assert len(recs[0]["statuses"]) == 4


def test_trace_text_explains_steps():
    """--trace without --json says what arrived, what became of it and what changed."""
    r = lbtx("replay", "--trace", *SIMPLE)
    assert r.returncode == 0
    assert "step 1: RegJob from NetworkServer" in r.stdout
    assert "created in state Submitted" in r.stdout
    assert "duplicate" in r.stdout  # the recording holds its registration twice
    assert "-> Cleared" in r.stdout


def test_stdin_and_dump_prefixes():
    """'-' reads standard input; DG.ARRIVED= dump prefixes and DG.LLLID= are accepted."""
    text = "".join(f"DG.ARRIVED=20081005221141.000000 DG.LLLID=7 {line}"
                   for f in SIMPLE for line in open(f) if line.strip())
    r = lbtx("replay", "--json", "-", stdin=text)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "Cleared"


def test_bad_lines_reported_and_skipped(tmp_path):
    """Bad lines are reported with file and line on stderr; the rest is processed; exit 1."""
    good = [line for f in SIMPLE for line in open(f) if line.strip()]
    lines = good[:3] + ['DATE=2012 HOST="unterminated\n', "\n", 'garbage without equals\n'] + good[3:]
    path = tmp_path / "mixed.ulm"
    path.write_text("".join(lines))
    r = lbtx("replay", str(path))
    assert r.returncode == 1
    assert f"{path}:4:" in r.stderr and f"{path}:6:" in r.stderr
    assert "2 bad line(s) skipped" in r.stderr
    assert "Cleared" in r.stdout


def test_events_before_registration_rejected(tmp_path):
    """An event that precedes its job's registration is refused (rejected_unregistered)."""
    lines = [line for line in open(SIMPLE[1]) if line.strip() and '"RegJob"' not in line]
    path = tmp_path / "noreg.ulm"
    path.write_text("".join(lines))
    r = lbtx("replay", "--trace", "--json", str(path))
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert recs and all(x["delivery"] == "rejected_unregistered" for x in recs)
    assert all(x["statuses"] == {} for x in recs)


def test_missing_file_is_an_error():
    r = lbtx("replay", "/nonexistent/file.ulm")
    assert r.returncode == 2
    assert "cannot read /nonexistent/file.ulm" in r.stderr


@pytest.mark.parametrize("args", [["replay"], ["nosuchcommand"], []])
def test_usage_errors(args):
    r = lbtx(*args)
    assert r.returncode == 2 and "usage:" in r.stderr
