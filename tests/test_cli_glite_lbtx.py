"""``lbtx status``, ``lbtx events``, ``lbtx jobs`` against a running server: tables
for people, ``--json`` with the keys of :func:`lbtx.status.to_json`, errors."""

from __future__ import annotations

import json

import pytest

from cli_support import (SERVER_KINDS, WMS_CHAIN, Chain, closed_port, command_env, register,
                         run, send, start_server)
from lbtx.jobid import JobId
from lbtx.seqcode import GliteSeqCode
from lbtx.status import JobStatus, to_json


@pytest.fixture(scope="module", params=SERVER_KINDS)
def lb_server(request, tmp_path_factory):
    server = start_server(request.param, tmp_path_factory.mktemp(f"lb-{request.param}"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def walked(lb_server):
    job, values = register(lb_server)
    chain = Chain(job, GliteSeqCode.parse(values["EDG_WL_SEQUENCE"]))
    send(lb_server, [chain.event(s, n, **f) for s, n, f, _ in WMS_CHAIN[:12]])  # to Running
    return job


def lbtx(server, *args):
    return run("lbtx", *args, env=command_env(server))


def test_status_table(lb_server, walked):
    r = lbtx(lb_server, "status", walked)
    assert r.returncode == 0, r.stderr
    head, row = r.stdout.splitlines()
    assert head.split() == ["JOBID", "TYPE", "STATE", "DONE", "DESTINATION", "LAST", "UPDATE"]
    assert row.split()[:5] == [walked, "Simple", "Running", "-",
                               "ce.example.org:2119/jobmanager-pbs-short"]


def test_status_json(lb_server, walked):
    r = lbtx(lb_server, "status", "--json", walked)
    assert r.returncode == 0, r.stderr
    (obj,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert set(obj) == set(to_json(JobStatus()))
    assert obj["jobid"] == walked and obj["state"] == "Running"
    assert obj["ce_node"] == "wn01.example.org"


def test_events(lb_server, walked):
    r = lbtx(lb_server, "events", walked)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["TIME", "SOURCE", "EVENT", "SEQCODE", "DETAILS"]
    assert [ln.split()[2] for ln in lines[1:]] == ["RegJob"] + [n for _, n, _, _ in WMS_CHAIN[:12]]
    r = lbtx(lb_server, "events", "--json", walked)
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[0]["event"] == "RegJob" and events[0]["attrs"]["jobtype"] == "SIMPLE"
    assert events[-1]["attrs"] == {"node": "wn01.example.org"}
    assert {e["jobid"] for e in events} == {walked}


def test_jobs(lb_server, walked):
    other, _ = register(lb_server)
    r = lbtx(lb_server, "jobs", "--server", lb_server.address)
    assert r.returncode == 0, r.stderr
    assert {walked, other} <= {ln.split()[0] for ln in r.stdout.splitlines()[1:]}
    r = lbtx(lb_server, "jobs", "--json")  # GLITE_WMS_QUERY_SERVER
    states = {json.loads(ln)["jobid"]: json.loads(ln)["state"] for ln in r.stdout.splitlines()}
    assert states[walked] == "Running" and states[other] == "Submitted"
    r = lbtx(lb_server, "jobs", "--owner", "/CN=Somebody Else")
    assert r.returncode == 1 and r.stderr.startswith("lbtx jobs: ")


def test_errors(lb_server, walked):
    """Bad and unknown ids fail with their own message; the others still print."""
    unknown = str(JobId(lb_server.store.host, lb_server.port, "NoSuchJob00000000000000"))
    r = lbtx(lb_server, "status", "garbage", unknown, walked)
    assert r.returncode == 1
    err = r.stderr.splitlines()
    assert err[0].startswith("lbtx status: garbage: Invalid argument")
    assert err[1].startswith(f"lbtx status: {unknown}: No such file or directory")
    assert walked in r.stdout
    r = run("lbtx", "status", f"https://127.0.0.1:{closed_port()}/x")
    assert r.returncode == 1 and "Connection refused" in r.stderr
    r = run("lbtx", "status")
    assert r.returncode == 2 and "usage:" in r.stderr
