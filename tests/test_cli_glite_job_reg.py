"""``glite-lb-job_reg`` as a process against a running server (cli.md §3.1, §0.2).

The printed lines (shell assignments the suite evals), the sequence codes per
source, DAGs and collections with their subjob ids, exclusive and repeated
registration, and every argument and server error with its exit status.
"""

from __future__ import annotations

import time

import pytest

from cli_support import (closed_port, SERVER_KINDS, CannedServer, command_env, registered, run,
                         start_server)
from lbtx.jobid import JobId

PROG = "glite-lb-job_reg"
ZERO = "UI=000000:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"


@pytest.fixture(scope="module", params=SERVER_KINDS)
def lb_server(request, tmp_path_factory):
    server = start_server(request.param, tmp_path_factory.mktemp(f"lb-{request.param}"))
    yield server
    server.stop()


def reg(server, *args, **env):
    return run(PROG, *args, env=command_env(server, **env))


def job_status(server, job, *args):
    return run("glite-lb-job_status", *args, job, env=command_env(server))


def test_simple_registration_output(lb_server):
    """-m: 'new jobid: ID', an empty line, EDG_JOBID and EDG_WL_SEQUENCE (APP=2)."""
    r = reg(lb_server, "-m", lb_server.address, "-s", "application")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("new jobid: ")
    job = lines[0].split()[2]  # grep "new jobid" | awk '{print $3}'
    parsed = JobId.parse(job)
    assert parsed.server == lb_server.address and len(parsed.unique) == 22
    assert lines[1] == ""
    assert lines[2] == f'EDG_JOBID="{job}"'
    assert lines[3] == f'EDG_WL_SEQUENCE="{ZERO.replace("APP=000000", "APP=000002")}"'
    st = job_status(lb_server, job)
    assert "\nstate : Submitted\n" in st.stdout
    assert f"\nowner : {lb_server.identity}\n" in st.stdout


@pytest.mark.parametrize("source,args,code", [
    ("UserInterface", (), ZERO.replace("UI=000000", "UI=000002")),
    ("userinterface", (), ZERO.replace("UI=000000", "UI=000002")),
    ("CREAMExecutor", ("-c",), ZERO),
    ("NetworkServer", (), ZERO.replace("NS=0000000000", "NS=0000000002")),
])
def test_sequence_code_per_source(lb_server, source, args, code):
    """The printed code is zero plus two in the registering source's component."""
    r = reg(lb_server, "-m", lb_server.address, "-s", source, *args)
    assert r.returncode == 0, r.stderr
    assert registered(r.stdout)["EDG_WL_SEQUENCE"] == code


def test_given_job_id(lb_server):
    """-j: no 'new jobid' line; the last two lines are what helper scripts eval."""
    job = f"https://{lb_server.address}/CREAM-test-{int(time.time() * 1000)}"
    r = reg(lb_server, "-j", job, "-m", "ignored.example.org:1", "-s", "CREAMExecutor", "-c")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f'\nEDG_JOBID="{job}"\nEDG_WL_SEQUENCE="{ZERO}"\n'
    st = job_status(lb_server, job)
    assert "\njobtype : Cream\n" in st.stdout
    assert "\ncream_state : " in st.stdout


def test_dag_and_its_subjob_ids(lb_server):
    """-n 3 -e seed: a DAG, EDG_WL_SUB_JOBID[i] as the server derives them."""
    r = reg(lb_server, "-m", lb_server.address, "-s", "UserInterface", "-n", "3", "-e", "s33d")
    assert r.returncode == 0, r.stderr
    values = registered(r.stdout)
    job = values["EDG_WL_DAG_JOBID"]
    assert list(values)[:2] == ["EDG_WL_DAG_JOBID", "EDG_WL_SEQUENCE"]
    subs = [values[f"EDG_WL_SUB_JOBID[{i}]"] for i in range(3)]
    assert subs == [str(j) for j in JobId.parse(job).subjobs("s33d", 3)]
    st = job_status(lb_server, job)
    assert "\njobtype : Dag\n" in st.stdout and "\nchildren_num : 3\n" in st.stdout
    sub = job_status(lb_server, subs[2])
    assert f"\nparent_job : {job}\n" in sub.stdout
    assert "\nstate : Submitted\n" in sub.stdout


def test_collection_with_registered_subjobs(lb_server):
    """-C -n 2 -S: a collection; each subjob registered with its own JDL."""
    r = reg(lb_server, "-m", lb_server.address, "-s", "UserInterface", "-C", "-n", "2", "-S")
    assert r.returncode == 0, r.stderr
    values = registered(r.stdout)
    assert list(values) == ["EDG_WL_COLLECTION_JOBID", "EDG_WL_SEQUENCE",
                            "EDG_WL_SUB_JOBID[0]", "EDG_WL_SUB_JOBID[1]"]
    assert values["EDG_WL_SEQUENCE"] == ZERO.replace("UI=000000", "UI=000002")
    for k in (0, 1):
        st = job_status(lb_server, values[f"EDG_WL_SUB_JOBID[{k}]"])
        assert f"\njdl : JDL of subjob #{k + 1}\n\n" in st.stdout
        log = run("glite-lb-job_log", values[f"EDG_WL_SUB_JOBID[{k}]"],
                  env=command_env(lb_server))
        assert log.stdout.count('DG.EVNT="RegJob"') == 1


def test_jdl_from_file(lb_server, tmp_path):
    """-l FILE: the JDL of the job is the file's text."""
    jdl = '[Executable="/bin/echo";VirtualOrganisation="voce";]'
    path = tmp_path / "job.jdl"
    path.write_text(jdl)
    r = reg(lb_server, "-m", lb_server.address, "-s", "UserInterface", "-l", str(path))
    assert r.returncode == 0, r.stderr
    st = job_status(lb_server, registered(r.stdout)["EDG_JOBID"])
    assert f"\njdl : {jdl}\n" in st.stdout


def test_reregistration_and_exclusive(lb_server):
    """Again without -E: a second RegJob; with -E: refused, nothing added."""
    r = reg(lb_server, "-m", lb_server.address, "-s", "UserInterface")
    job = registered(r.stdout)["EDG_JOBID"]
    again = reg(lb_server, "-j", job, "-s", "UserInterface")
    assert again.returncode == 0, again.stderr
    hist = run("glite-lb-state_history", job, env=command_env(lb_server))
    assert len(hist.stdout.splitlines()) == 2
    excl = reg(lb_server, "-j", job, "-s", "UserInterface", "-E")
    assert excl.returncode == 1
    assert excl.stderr.startswith(f"edg_wll_RegisterJobExt({job}): File exists")
    hist = run("glite-lb-state_history", job, env=command_env(lb_server))
    assert len(hist.stdout.splitlines()) == 2
    fresh = reg(lb_server, "-m", lb_server.address, "-s", "UserInterface", "-E")
    assert fresh.returncode == 0, fresh.stderr


@pytest.mark.parametrize("args,status,message", [
    (("-s", "UserInterface"), 1, "either -m server or -j jobid"),
    (("-m", "127.0.0.1:9"), 1, "-s source required"),
    (("-m", "127.0.0.1:9", "-s", "UserInterface", "-S"), 22, "need -n"),
    (("-m", "127.0.0.1:9", "-s", "UserInterface", "-C"), 22, "need -n"),
    (("-h",), 22, "-E"),
    (("-Q",), 22, "-E"),
    (("-j", "not a job id", "-s", "UserInterface"), 1, "not a job id: Invalid argument"),
    (("-m", "127.0.0.1:9", "-s", "UserInterface", "-l", "/nonexistent/jdl"), 1,
     "/nonexistent/jdl: No such file or directory"),
])
def test_argument_errors(args, status, message):
    """Argument problems: the message of cli.md on stderr, its exit status, no server."""
    r = run(PROG, *args)
    assert r.returncode == status
    assert message in r.stderr


def test_unknown_source_fails(lb_server):
    """An unknown source name makes the registration fail (exit 1)."""
    r = reg(lb_server, "-m", lb_server.address, "-s", "NoSuchComponent")
    assert r.returncode == 1
    assert "edg_wll_RegisterJobSync(https://" in r.stderr
    assert "Invalid argument" in r.stderr


def test_unreachable_server():
    """Nothing on the store port: a clear error, exit 1, no EDG_JOBID line."""
    port = closed_port() - 1
    t0 = time.monotonic()
    r = run(PROG, "-m", f"127.0.0.1:{port}", "-s", "UserInterface")
    assert time.monotonic() - t0 < 5
    assert r.returncode == 1
    assert r.stdout.startswith("new jobid: https://127.0.0.1:")
    assert "EDG_JOBID" not in r.stdout
    assert "): Connection refused (connecting to 127.0.0.1:" in r.stderr


def test_hanging_store_port_times_out():
    """A store port that never answers: 'Connection timed out' after LOG_SYNC_TIMEOUT."""
    canned = CannedServer(None)
    try:
        t0 = time.monotonic()
        r = run(PROG, "-m", f"127.0.0.1:{canned.port - 1}", "-s", "UserInterface",
                env=command_env(GLITE_WMS_LOG_SYNC_TIMEOUT="1"))
        elapsed = time.monotonic() - t0
    finally:
        canned.close()
    assert r.returncode == 1
    assert "Connection timed out" in r.stderr
    assert 0.9 < elapsed < 5
