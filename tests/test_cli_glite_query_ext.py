"""``glite-lb-query_ext`` against a running server (cli.md §3.8): the condition
language on stdin or in a file, job ids, flat states and events, the suite's own
queries, and parse, flag and server errors with their exit statuses."""

from __future__ import annotations

import pytest

from cli_support import (SERVER_KINDS, closed_port, command_env, register, run, start_server)

PROG = "glite-lb-query_ext"


@pytest.fixture(scope="module", params=SERVER_KINDS)
def lb_server(request, tmp_path_factory):
    server = start_server(request.param, tmp_path_factory.mktemp(f"lb-{request.param}"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def coll(lb_server):
    job, values = register(lb_server, "-C", "-n", "5")
    return job, [values[f"EDG_WL_SUB_JOBID[{i}]"] for i in range(5)]


def query(server, text, *args, **env):
    return run(PROG, *args, input=text, env=command_env(server, **env))


def test_jobid_query(lb_server):
    """One 'jobId: <id>' line per matching job."""
    job, _ = register(lb_server)
    r = query(lb_server, f"jobid={job}\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"jobId: {job}\n"


def test_parent_job_query_counts_subjobs(lb_server, coll):
    """The collections test: parent_job=<collection> gives one line per subjob."""
    job, subs = coll
    r = query(lb_server, f"parent_job={job}\n")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(f"jobId: {s}" for s in subs)


def test_or_within_a_line_and_several_queries(lb_server, coll, tmp_path):
    """Blanks or ';' OR the conditions of a line; an empty line ends a query; -i file."""
    job, subs = coll
    text = f'jobid={subs[0]} jobid="{subs[1]}";jobid={subs[2]}\n\njobid={job}\n'
    path = tmp_path / "conds"
    path.write_text(text)
    r = run(PROG, "-i", str(path), env=command_env(lb_server))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sorted(lines[:3]) == sorted(f"jobId: {s}" for s in subs[:3])
    assert lines[3:] == [f"jobId: {job}"]


def test_unopenable_file_falls_back_to_stdin(lb_server):
    job, _ = register(lb_server)
    r = query(lb_server, f"jobid={job}\n", "-i", "/nonexistent/conditions")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"jobId: {job}\n"


def test_states(lb_server):
    """-s: per job 'STATUS:\\t<State>', an empty line, the flat fields."""
    job, _ = register(lb_server)
    r = query(lb_server, f"jobid={job}\n", "-s")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[:3] == ["STATUS:\tSubmitted", "", "state : Submitted"]
    assert f"jobId : {job}" in lines
    assert "jobtype : 0" in lines and "done_code : -1" in lines
    assert not any(ln.startswith(("children :", "children_states", "children_hist",
                                  "user_tags", "acl :")) for ln in lines)


def test_events(lb_server):
    """-e: a block of event conditions follows; 'event: <Name padded> (jobid ...)'."""
    job, _ = register(lb_server)
    r = query(lb_server, f"jobid={job}\n\nsource=UserInterface\n", "-e")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"event: RegJob      (jobid {job})\n"
    r = query(lb_server, f"jobid={job}\n\nlevel<9 level=9\n", "-e")
    assert r.stdout == f"event: RegJob      (jobid {job})\n"


def test_suite_queries_parse(lb_server):
    """The suite's own condition files (cli.md §3.8) are accepted and answered."""
    job, _ = register(lb_server)
    text = ('last_update_time<"2999-05-01 12:10:00"\n'
            'last_update_time>"2000-05-01 12:00:00"\n'
            f'jobid<>"https://{lb_server.address}/none"\n')
    r = query(lb_server, text)
    assert r.returncode == 0, r.stderr
    assert f"jobId: {job}\n" in r.stdout
    r = query(lb_server, f'jdl_attr=VOCE VirtualOrganisation\njobid<>"https://{lb_server.address}/none"\n', "-C")
    assert r.returncode == 0  # answered, whatever it matches


def test_server_error_prints_only_its_description(lb_server):
    """A query the server refuses: ' (<desc>)' on stderr, exit 0 (quirk)."""
    r = query(lb_server, f"jobid=https://{lb_server.address}/NoSuchJob00000000000000\n")
    assert r.returncode == 0
    assert r.stdout == ""
    assert r.stderr.startswith(" (") and r.stderr.endswith(")\n")
    assert PROG not in r.stderr


@pytest.mark.parametrize("text,message", [
    ("status=bogus\n", "invalid status value (bogus)"),
    ("jobid=not-a-job\n", "cannot parse jobId"),
    ("   \n", "a line of blanks"),
    ("status running\n", "operator expected"),
    ('destination="unterminated\n', "unterminated"),
    ("owner<someone\n", "accepts only equal and unequal"),
])
def test_parse_errors(lb_server, text, message):
    r = query(lb_server, text)
    assert r.returncode == 1
    assert r.stderr.startswith(f"{PROG}: ") and message in r.stderr


@pytest.mark.parametrize("args", [("-Z",), ("-r", "sometimes"), ("-J", "x")])
def test_bad_flags(args):
    r = run(PROG, *args, input="")
    assert r.returncode == 22
    assert "Usage:" in r.stderr


def test_help():
    r = run(PROG, "-h", input="")
    assert r.returncode == 0 and "Usage:" in r.stderr


def test_server_from_option_and_unreachable(lb_server):
    """-m wins over GLITE_WMS_QUERY_SERVER; an unreachable server is an error, exit 1."""
    job, _ = register(lb_server)
    env = command_env(GLITE_WMS_QUERY_SERVER=f"127.0.0.1:{closed_port()}")
    r = run(PROG, "-m", lb_server.address, input=f"jobid={job}\n", env=env)
    assert r.returncode == 0 and r.stdout == f"jobId: {job}\n"
    r = run(PROG, input=f"jobid={job}\n", env=env)
    assert r.returncode == 1
    assert "Connection refused" in r.stderr
