"""``glite-lb-<state>.sh`` (cli.md §3.19) in this process: the chains, and every way a
run stops with 4 before or while logging (bad options, a failed registration, an
unparsable job id, an unreachable logger). The runs against real daemons are in
tests/test_cli_walk.py."""

from __future__ import annotations

import io

import pytest

from daemon_support import free_port_pair, start_daemon, stop_daemon
from lbtx.cli.glite import state_scripts
from lbtx.schema import EVENT_SPECS
from spool_support import event_files, read_lines, records_of

JOB = "https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg"


def run(state, *args, **environ):
    out, err = io.StringIO(), io.StringIO()
    status = state_scripts.main(state, list(args), out=out, err=err, environ=environ)
    return status, out.getvalue(), err.getvalue()


def test_each_chain_extends_the_one_before():
    names = [[step[3] for step in state_scripts.chain(s, {})] for s in state_scripts.STATES]
    lengths = {s: len(n) for s, n in zip(state_scripts.STATES, names)}
    assert lengths == {"waiting": 1, "ready": 7, "scheduled": 11, "running": 12, "done": 13,
                       "cleared": 14, "aborted": 8, "cancelled": 13}
    chains = dict(zip(state_scripts.STATES, names))
    assert chains["cleared"][:13] == chains["done"] and chains["done"][-1] == "Done"
    assert chains["aborted"] == chains["ready"] + ["Abort"]
    events = {s.name for s in EVENT_SPECS}
    assert all(name in events for chain in names for name in chain)


def test_destination_and_ce_node_come_from_the_environment():
    steps = state_scripts.chain("running", {"DESTINATION": "ce9:2119/q", "CE_NODE": "wn9"})
    flat = [a for step in steps for a in step]
    assert "--dest_id=ce9:2119/q" in flat and "--node=wn9" in flat


@pytest.mark.parametrize("args", [[], ["-q"], ["-m"], ["-j"], ["-m", "h:1", "extra"],
                                  ["--", "-m", "h:1"], ["-m\x00", "h"]])
def test_usage_errors_exit_4(args):
    status, out, err = run("done", *args)
    assert status == 4 and out == "" and err.startswith("Usage : ")


@pytest.mark.parametrize("args", [["-x", "-m", "h:1"], ["-X", "/tmp/s", "-j", JOB]])
def test_the_proxy_is_refused(args):
    status, out, err = run("done", *args)
    assert status == 4 and out == "" and "not supported" in err


def test_the_reason_filler_goes_to_every_event(tmp_path):
    data = tmp_path / "data"
    proc = start_daemon("lb-logger", ["-d", str(data), "--no-interlogger"], tmp_path,
                        data / "logger.sock", tag="logger")
    try:
        status, out, err = run("aborted", "-j", JOB, "-l", "60",
                               LBTX_LOGGER=str(data / "logger.sock"))
    finally:
        stop_daemon(proc)
    assert status == 0, err
    echoed = [line for line in err.splitlines() if line.startswith("glite-lb-logevent")]
    assert len(echoed) == 8 and not any(" -l " in line for line in echoed)
    spool = data / "spool"
    lines = [r.decode() for name in event_files(spool)
             for r in records_of(read_lines(spool / name))]
    specs = {s.name: s for s in EVENT_SPECS}
    with_reason = [step[3] for step in state_scripts.chain("aborted", {})
                   if any(a.name == "reason" for a in specs[step[3]].attrs)]
    assert "Abort" in with_reason and len(lines) == 8
    filled = [line for line in lines if 'REASON="0...................20' in line]
    assert len(filled) == len(with_reason)
    assert all('.end=60"' in line for line in filled)


@pytest.mark.parametrize("server", ["closed-port", "not a server", "h:99999", "x" * 100000],
                         ids=["closed-port", "not-a-server", "bad-port", "oversized"])
def test_a_failed_registration_exits_4_and_logs_nothing(server):
    if server == "closed-port":
        server = f"localhost:{free_port_pair()}"
    status, out, err = run("running", "-m", server)
    assert status == 4 and out == ""
    assert "RegisterJobSync" in err or "Invalid argument" in err
    assert "glite-lb-logevent" not in err


@pytest.mark.parametrize("job", ["not a job id", "https://", "https://h:9000/" + "x" * 100000,
                                 "https://h:9000/a b"])
def test_an_unparsable_job_id_stops_at_the_first_event(job):
    status, out, err = run("cleared", "-j", job)
    assert status == 4 and out == ""
    assert sum(line.startswith("glite-lb-logevent") for line in err.splitlines()) == 1


def test_an_unreachable_logger_stops_at_the_first_event():
    closed = free_port_pair()
    status, out, err = run("cleared", "-j", JOB, GLITE_WMS_LOG_DESTINATION=f"localhost:{closed}")
    assert status == 4 and out == ""
    lines = err.splitlines()
    assert sum(line.startswith("glite-lb-logevent") for line in lines) == 1
    assert f"-c {state_scripts.FIRST_CODE} -s NetworkServer -e Accepted" in lines[0]
    assert "edg_wll_LogEvent" in err


def test_a_malformed_edg_wl_sequence_stops_at_the_first_event():
    status, out, err = run("waiting", "-j", JOB, EDG_WL_SEQUENCE="UI=garbage")
    assert status == 4 and out == "" and "SetLoggingJob" in err
