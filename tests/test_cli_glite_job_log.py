"""``glite-lb-job_log`` and ``glite-lb-state_history`` against a running server
(cli.md §3.5, §3.6): the event lines, their layout and count, the per-event
states, and the error paths with their (quirky) exit statuses."""

from __future__ import annotations

import re

import pytest

from cli_support import (SERVER_KINDS, WMS_CHAIN, Chain, closed_port, command_env, register,
                         run, send, start_server)
from conftest import SCENARIOS, SPEC
from lbtx import ulm
from lbtx.seqcode import GliteSeqCode
from scenario_support import load, scenario_lines

LOG = "glite-lb-job_log"
HISTORY = "glite-lb-state_history"


@pytest.fixture(scope="module", params=SERVER_KINDS)
def lb_server(request, tmp_path_factory):
    server = start_server(request.param, tmp_path_factory.mktemp(f"lb-{request.param}"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def walked(lb_server):
    """A job registered and taken through the whole WMS chain."""
    job, values = register(lb_server, source="UserInterface")
    chain = Chain(job, GliteSeqCode.parse(values["EDG_WL_SEQUENCE"]))
    send(lb_server, [chain.event(s, n, **f) for s, n, f, _ in WMS_CHAIN])
    return job


def test_job_log_layout(lb_server, walked):
    """Each event line then an empty line, one more empty line, 'Found N events'."""
    r = run(LOG, walked, env=command_env(lb_server))
    assert r.returncode == 0 and r.stderr == ""
    n = 1 + len(WMS_CHAIN)
    assert r.stdout.endswith(f"\n\nFound {n} events\n")
    body = r.stdout[:-len(f"\nFound {n} events\n")]
    records = body.split("\n\n")
    assert records[-1] == ""
    records = records[:-1]
    assert len(records) == n
    names = []
    for line in records:
        assert line.startswith("DATE=") and "\n" not in line
        assert " PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 DG.SOURCE=" in line
        ev = ulm.parse(line)  # what job_log prints reads back
        assert str(ev.job_id) == walked
        names.append(ev.type_name)
    assert names == ["RegJob"] + [name for _, name, _, _ in WMS_CHAIN]
    reg = records[0]
    assert 'DG.SRC_INSTANCE="" DG.EVNT="RegJob"' in reg
    assert f'DG.USER="{lb_server.identity}"' in reg
    # every RegJob field is written, the unset ones as ""
    assert reg.endswith('DG.REGJOB.NS="NS" DG.REGJOB.PARENT="" DG.REGJOB.JOBTYPE="SIMPLE" '
                        'DG.REGJOB.NSUBJOBS="0" DG.REGJOB.SEED="" DG.REGJOB.WMS_DN=""')
    assert _keys(reg) == _keys(documented_regjob())


def _keys(line: str) -> list[str]:
    return re.findall(r'(?:^| )([A-Z][A-Z._]*)=', line)


def documented_regjob() -> str:
    """The RegJob line of cli.md §3.5's job_log example."""
    text = (SPEC / "cli.md").read_text()
    start = text.index("### 3.5 glite-lb-job_log")
    return next(ln for ln in text[start:].splitlines() if ln.startswith("DATE=")
                and 'DG.EVNT="RegJob"' in ln)


def test_job_log_repeat(lb_server, walked):
    """-r 2 -d 0: the result once, then 'Sleeping ...' and 'OK' per repetition."""
    r = run(LOG, "-r", "2", "-d", "0", walked, env=command_env(lb_server))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Found ") == 1
    assert r.stdout.endswith("Sleeping ...\nOK\nSleeping ...\nOK\n")


def test_job_log_unknown_job_exits_0(lb_server):
    """A failed query: the error on stderr, 'Found 0 events', exit 0 (quirk)."""
    r = run(LOG, f"https://{lb_server.address}/NoSuchJob00000000000000", env=command_env(lb_server))
    assert r.returncode == 0
    assert r.stdout == "\nFound 0 events\n"
    assert r.stderr.startswith(f"{LOG}: No such file or directory (")


def test_job_log_unreachable_exits_0():
    r = run(LOG, f"https://127.0.0.1:{closed_port()}/q7Xk2mVb0Lr9T1aZcW3eYg")
    assert r.returncode == 0
    assert r.stdout == "\nFound 0 events\n"
    assert f"{LOG}: Connection refused (connecting to 127.0.0.1:" in r.stderr


@pytest.mark.parametrize("args,message", [
    ((), "Usage: "), (("-Z", "x"), "Usage: "), (("-r", "many", "x"), "Usage: "),
    (("garbage",), "garbage: can't parse job ID"),
])
def test_job_log_argument_errors(args, message):
    r = run(LOG, *args)
    assert r.returncode == 1
    assert message in r.stderr


def test_state_history_of_the_chain(lb_server, walked):
    """One line per event: name, job id, the state after it, the fields, a TAB each."""
    r = run(HISTORY, walked, env=command_env(lb_server))
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1 + len(WMS_CHAIN)  # state_history | nl | tail -n 1
    first = lines[0].split("\t")
    assert first[:3] == ["RegJob", walked, "Submitted"]
    assert first[4:] == ["(null)", "(null)", "-1", "(null)", ""]  # VO, destination, done, reason
    states = [ln.split("\t")[2] for ln in lines[1:]]
    assert states == [expected for _, _, _, expected in WMS_CHAIN]
    done = lines[-2].split("\t")
    assert done[0] == "Done" and done[5] == "ce.example.org:2119/jobmanager-pbs-short"
    assert done[6] == "0"  # done_code OK
    assert all(ln.endswith("\t") for ln in lines)


def test_state_history_fields_and_jdl(lb_server, tmp_path):
    """-f: any status field, and jdl:Attr read from the job's JDL."""
    jdl = tmp_path / "vo.jdl"
    jdl.write_text('[ Executable = "/bin/echo"; VirtualOrganisation = "voce"; ]')
    job, _ = register(lb_server, "-l", str(jdl))
    r = run(HISTORY, "-f", "jdl:VirtualOrganisation,owner,state,jdl:Missing", job,
            env=command_env(lb_server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"RegJob\t{job}\tSubmitted\tvoce\t{lb_server.identity}\tSubmitted\t(null)\t\n"


def test_state_history_of_a_scenario(lb_server):
    """A scenario job: one line per event, ending in the scenario's final state."""
    path = SCENARIOS / "P01-simple-job-full-life.json"
    scenario = load(path)
    send(lb_server, scenario_lines(scenario))
    job = scenario["jobs"]["J"]
    env = command_env(lb_server, GLITE_WMS_QUERY_SERVER_OVERRIDE="1")
    r = run(HISTORY, job, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(scenario["steps"])
    expected = [s["expect"]["J"]["state"] for s in scenario["steps"] if "J" in s.get("expect", {})]
    assert [ln.split("\t")[2] for ln in lines][-1] == expected[-1]
    assert lines[0].split("\t")[4] == "exvo"  # jdl:VirtualOrganisation


@pytest.mark.parametrize("args,message", [
    ((), "Usage: "), (("-f", "no_such_field", "https://h:9000/x"), "no_such_field: unknown field"),
    (("junk",), "junk: can't parse job ID"),
])
def test_state_history_errors(args, message):
    r = run(HISTORY, *args)
    assert r.returncode == 1
    assert message in r.stderr


def test_state_history_unknown_job(lb_server):
    r = run(HISTORY, f"https://{lb_server.address}/NoSuchJob00000000000000",
            env=command_env(lb_server))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith(f"{HISTORY}: No such file or directory")
