"""``glite-lb-user_jobs`` against a running server of its own (cli.md §3.7).

The server of this module holds only the jobs registered here, so the listing is
checked line by line.
"""

from __future__ import annotations

import pytest

from cli_support import (SERVER_KINDS, WMS_CHAIN, Chain, closed_port, command_env, register,
                         run, send, start_server)
from lbtx.seqcode import GliteSeqCode

PROG = "glite-lb-user_jobs"


@pytest.fixture(scope="module", params=SERVER_KINDS)
def lb_server(request, tmp_path_factory):
    server = start_server(request.param, tmp_path_factory.mktemp(f"lb-{request.param}"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def jobs(lb_server):
    """A submitted job, a job walked to Done, a collection of two and a CREAM job."""
    simple, _ = register(lb_server)
    done, values = register(lb_server)
    chain = Chain(done, GliteSeqCode.parse(values["EDG_WL_SEQUENCE"]))
    upto = [i for i, step in enumerate(WMS_CHAIN) if step[1] == "Done"][0]
    send(lb_server, [chain.event(s, n, **f) for s, n, f, _ in WMS_CHAIN[:upto + 1]])
    coll, values = register(lb_server, "-C", "-n", "2")
    subs = [values["EDG_WL_SUB_JOBID[0]"], values["EDG_WL_SUB_JOBID[1]"]]
    cream, _ = register(lb_server, "-c", source="CREAMExecutor")
    return dict(simple=simple, done=done, coll=coll, subs=subs, cream=cream)


def test_listing(lb_server, jobs):
    """Simple jobs, the collection with its subjobs under it, 'Found N jobs' of all."""
    r = run(PROG, env=command_env(lb_server))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[-3:] == ["", "Found 6 jobs", ""]  # every returned job counts
    listed = lines[:-3]
    expected_simple = {f"      {jobs['simple']} .... Submitted ",
                       f"      {jobs['done']} .... Done DONE_CODE_OK"}
    assert expected_simple <= set(listed)
    coll = listed.index(f"COLL  {jobs['coll']} .... Submitted ")
    assert sorted(listed[coll + 1:coll + 3]) == sorted(
        f" `-       {s} .... Submitted " for s in jobs["subs"])
    assert len(listed) == 5  # the CREAM job is not listed
    assert not any(jobs["cream"] in line for line in listed)


def test_no_states(lb_server, jobs):
    """-n: a TAB and the id per returned job."""
    r = run(PROG, "-n", env=command_env(lb_server))
    assert r.returncode == 0, r.stderr
    body, found = r.stdout.rsplit("\n\n", 1)
    assert found == "Found 6 jobs\n"
    assert sorted(body.split("\n")) == sorted(
        f"\t{j}" for j in [jobs["simple"], jobs["done"], jobs["coll"], *jobs["subs"], jobs["cream"]])


def test_help():
    r = run(PROG, "-h")
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.startswith("Usage: glite-lb-user_jobs")


def test_bad_option():
    r = run(PROG, "--bogus")
    assert r.returncode == 1 and "Usage:" in r.stderr


def test_no_server():
    """Without GLITE_WMS_QUERY_SERVER there is nobody to ask: an error, exit 1."""
    r = run(PROG)
    assert r.returncode == 1
    assert r.stderr.startswith(f"{PROG}: Invalid argument (no server given")


def test_unreachable():
    r = run(PROG, env=command_env(GLITE_WMS_QUERY_SERVER=f"127.0.0.1:{closed_port()}"))
    assert r.returncode == 1
    assert f"{PROG}: Connection refused" in r.stderr


def test_edg_wl_fallback(lb_server, jobs):
    """The older EDG_WL_QUERY_SERVER spelling is read when GLITE_WMS_ is absent."""
    env = command_env(EDG_WL_QUERY_SERVER=lb_server.address)
    r = run(PROG, "-n", env=env)
    assert r.returncode == 0, r.stderr
    assert f"\t{jobs['simple']}\n" in r.stdout
