"""``glite-lb-job_status`` as a process against a running server (cli.md §3.3).

The job-state walk of cli.md §3.2 (register, then every event of the standard WMS
chain through the box protocol to the store port, the state after each step),
the block layout against the one documented in cli.md, every public scenario
against ``lbtx replay``, children, histograms, and the error paths.
"""

from __future__ import annotations

import io
import re
import time

import pytest

from cli_support import (closed_port, BIN, SERVER_KINDS, WMS_CHAIN, CannedServer, Chain, canned_answer,
                         command_env, register, run, send, start_server)
from conftest import SCENARIOS, SPEC
from legacy_query_support import replay_scenario
from lbtx.cli.status_text import status_block
from lbtx.jobid import JobId
from lbtx.seqcode import GliteSeqCode
from scenario_support import load, scenario_lines

PROG = "glite-lb-job_status"


@pytest.fixture(scope="module", params=SERVER_KINDS)
def lb_server(request, tmp_path_factory):
    server = start_server(request.param, tmp_path_factory.mktemp(f"lb-{request.param}"))
    yield server
    server.stop()


def status(server, *args, **env):
    return run(PROG, *args, env=command_env(server, **env))


def field(out: str, name: str) -> list[str]:
    """Values of the top-level ``name : value`` lines."""
    prefix = f"{name} : "
    return [line[len(prefix):] for line in out.splitlines() if line.startswith(prefix)]


def documented_keys() -> list[str]:
    """The field names of cli.md's job_status example, in order."""
    text = (SPEC / "cli.md").read_text()
    start = text.index("Order and names (top level, no indentation):")
    block = text[text.index("```", start) + 3:]
    block = block[:block.index("```")]
    return _keys(block)


def _keys(text: str) -> list[str]:
    keys = []
    for line in text.splitlines():
        if not line or line[0] in " \t" or line == "...":
            continue
        if line.startswith("(null)"):
            line = line[len("(null)"):]
        keys.append(line.split(":", 1)[0].rstrip())
    return keys


def test_state_walk_of_the_wms_chain(lb_server):
    """Register, then each event of cli.md §3.2's chain: job_status shows its state."""
    job, values = register(lb_server)
    r = status(lb_server, job)
    assert r.returncode == 0, r.stderr
    assert field(r.stdout, "state") == ["Submitted"]
    chain = Chain(job, GliteSeqCode.parse(values["EDG_WL_SEQUENCE"]))
    for source, name, fields, expected in WMS_CHAIN:
        send(lb_server, [chain.event(source, name, **fields)])
        r = status(lb_server, job)
        assert r.returncode == 0, r.stderr
        assert field(r.stdout, "state") == [expected], f"after {source} {name}"
        if name == "Done":
            assert field(r.stdout, "done_code") == ["DONE_CODE_OK"]
            assert field(r.stdout, "exit_code") == ["0"]
    out = r.stdout
    assert field(out, "destination") == ["ce.example.org:2119/jobmanager-pbs-short"]
    assert field(out, "ce_node") == ["wn01.example.org"]
    # exactly one line holds "state :" for a simple job (scripts grep without ^)
    assert [ln for ln in out.splitlines() if "state :" in ln] == ["state : Cleared"]


def test_block_layout_is_the_documented_one(lb_server):
    """Leading empty line, the field names of cli.md in its order, closing empty line."""
    job, _ = register(lb_server)
    r = status(lb_server, job)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("\nstate : Submitted\n")
    assert r.stdout.endswith("ft_dest : (null)\n\n")
    body = r.stdout[1:-1]
    assert _keys(body) == documented_keys()
    lines = body.splitlines()
    assert "access rights : " in lines and "(null)payload_running: 0" in lines
    assert "stateEnterTimes : " in lines and "user_tags :" in lines
    assert field(r.stdout, "jobId") == [job]
    assert field(r.stdout, "owner") == [lb_server.identity]
    assert field(r.stdout, "jdl") != ["(null)"]
    assert field(r.stdout, "jobtype") == ["Simple"]
    assert "     Submitted  " in r.stdout and "     Undefined      - not available -" in lines
    # stateEnterTime is seconds.microseconds of a time just now
    sec, usec = field(r.stdout, "stateEnterTime")[0].split(".")
    assert len(usec) == 6 and abs(int(sec) - time.time()) < 600


def test_several_jobs_and_flags(lb_server):
    """One block per job after one leading empty line; -fullhist announces itself."""
    a, _ = register(lb_server)
    b, _ = register(lb_server)
    r = status(lb_server, "-fullhist", a, b)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("\n\nFound a FULLHIST flag\n\nstate : ")
    assert field(r.stdout, "jobId") == [a, b]
    assert r.stdout.count("\n\nstate : ") == 2
    r = status(lb_server, "-fasthist", a)
    assert "\nFound a FASTHIST flag\n" in r.stdout


def test_collection_children_and_histogram(lb_server):
    """A collection lists its children, their nested blocks and the histogram."""
    job, values = register(lb_server, "-C", "-n", "2")
    subs = [values["EDG_WL_SUB_JOBID[0]"], values["EDG_WL_SUB_JOBID[1]"]]
    assert subs == [str(j) for j in JobId.parse(job).subjobs(None, 2)]
    r = status(lb_server, "-fullhist", job)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert field(out, "jobtype") == ["Collection"]
    assert field(out, "children_num") == ["2"]
    assert [ln for ln in out.splitlines() if ln.startswith("\tchildren : ")] == \
        [f"\tchildren : {s}" for s in subs]
    assert out.count("\nchildren_states :\n") == 1
    assert [ln for ln in out.splitlines() if ln.startswith("\tjobId : ")] == \
        [f"\tjobId : {s}" for s in subs]
    assert out.count("\tstate : Submitted\n") == 2
    assert out.count(f"\tparent_job : {job}\n") == 2
    assert "children_hist :\n     Undefined  0\n     Submitted  2\n" in out
    # each nested block ends with an unindented empty line
    assert "\tft_dest : (null)\n\n" in out
    # the parent's own state line is the only one at the start of a line
    assert len(re.findall(r"^state : ", out, re.M)) == 1


def test_nochildrenstates(lb_server):
    """-nochildrenstates: no children asked for, and the word itself is 'a job id'."""
    job, _ = register(lb_server, "-C", "-n", "2")
    r = status(lb_server, "-nochildrenstates", job)
    assert r.returncode == 0
    assert f"{PROG}: -nochildrenstates: cannot parse jobId" in r.stderr
    assert "children_states :" not in r.stdout
    assert "\tchildren : " not in r.stdout
    assert field(r.stdout, "children_num") == ["2"]


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.json")), ids=lambda p: p.stem[:3])
def test_scenario_jobs_read_back_as_replayed(lb_server, path):
    """Each scenario's events through intake: job_status prints what replay computes."""
    scenario = load(path)
    send(lb_server, scenario_lines(scenario))
    replay = replay_scenario(path)
    override = dict(GLITE_WMS_QUERY_SERVER_OVERRIDE="1")
    for rec in replay.jobs():
        r = status(lb_server, str(rec.job_id), **override)
        assert r.returncode == 0, r.stderr
        mine = status_block(rec.status)
        compare = ("state", "jobtype", "owner", "parent_job", "jdl", "destination",
                   "network server", "reason", "location", "ce_node", "done_code",
                   "exit_code", "resubmitted", "cancelling", "stateEnterTime",
                   "lastUpdateTime", "payload_owner", "cream_state", "pbs_state",
                   "ft_compute_job", "jw_status", "suspended", "localId")
        for name in compare:
            assert field(r.stdout, name) == field(mine, name), (path.name, rec.job_id, name)
        for name, value in (rec.status.user_tags or {}).items():
            assert f'{name:>14} = "{value}"\n' in r.stdout


def test_unknown_job(lb_server):
    """An id the server does not know: the error on stderr, exit 1."""
    job = f"https://{lb_server.address}/NoSuchJobAtAll0000000"
    r = status(lb_server, job)
    assert r.returncode == 1
    assert r.stdout == "\n"
    assert r.stderr.startswith(f"{PROG}: edg_wll_JobStatus: No such file or directory")


def test_malformed_job_id_only_warns(lb_server):
    """An unparsable id prints 'cannot parse jobId' and does not change the status."""
    job, _ = register(lb_server)
    r = status(lb_server, "not-a-jobid", job)
    assert r.returncode == 0
    assert r.stderr == f"{PROG}: not-a-jobid: cannot parse jobId\n"
    assert field(r.stdout, "jobId") == [job]


@pytest.mark.parametrize("args", [(), ("--help",)])
def test_usage(args):
    """No argument or --help: an empty line on stdout, usage on stderr, exit 0."""
    r = run(PROG, *args)
    assert r.returncode == 0
    assert r.stdout == "\n"
    assert r.stderr.startswith("Usage: glite-lb-job_status")


def test_argv0_as_invoked():
    """Messages name the program as invoked: found on PATH its name, else the path."""
    assert run(PROG, "junk").stderr == f"{PROG}: junk: cannot parse jobId\n"
    r = run(f"./{PROG}", "junk", cwd=BIN)
    assert r.stderr == f"./{PROG}: junk: cannot parse jobId\n"


def test_unreachable_server_fails_fast():
    """Nobody listening: 'Connection refused' at once, exit 1."""
    port = closed_port()
    t0 = time.monotonic()
    r = run(PROG, f"https://127.0.0.1:{port}/q7Xk2mVb0Lr9T1aZcW3eYg")
    assert time.monotonic() - t0 < 5
    assert r.returncode == 1
    assert "edg_wll_JobStatus: Connection refused" in r.stderr


def test_hanging_server_times_out():
    """A server that never answers: 'Connection timed out' within the query timeout."""
    canned = CannedServer(None)
    try:
        t0 = time.monotonic()
        r = run(PROG, f"https://127.0.0.1:{canned.port}/q7Xk2mVb0Lr9T1aZcW3eYg",
                env=command_env(GLITE_WMS_QUERY_TIMEOUT="1"))
        elapsed = time.monotonic() - t0
    finally:
        canned.close()
    assert r.returncode == 1
    assert "edg_wll_JobStatus: Connection timed out" in r.stderr
    assert 0.9 < elapsed < 5


@pytest.mark.parametrize("status_line,code,desc,text", [
    ("410 Gone", 43, "job was purged", "Identifier removed (job was purged)"),
    ("401 Unauthorized", 1, "not the owner", "Operation not permitted (not the owner)"),
    ("404 Not Found", 2, "", "No such file or directory"),
])
def test_server_errors_print_strerror(status_line, code, desc, text):
    """Errors the server reports print as cli.md greps them (no '()' without a desc)."""
    attrs = f' code="{code}" desc="{desc}"' if desc else f' code="{code}"'
    number, reason = status_line.split(" ", 1)
    canned = CannedServer(canned_answer(int(number), reason,
                                        f"<edg_wll_QueryJobsResult{attrs}>\r\n"
                                        f"</edg_wll_QueryJobsResult>\r\n"))
    try:
        job = f"https://127.0.0.1:{canned.port}/q7Xk2mVb0Lr9T1aZcW3eYg"
        r = run(PROG, job)
        request = canned.requests[0]
    finally:
        canned.close()
    assert r.returncode == 1
    assert r.stderr == f"{PROG}: edg_wll_JobStatus: {text}\n"
    # the request is the legacy client's queryJobs with the jobId condition
    assert request.startswith(b"POST /queryJobs HTTP/1.1\r\n")
    assert b"User-Agent: edg_wll_Api/3.0/3.0\r\n" in request
    assert b"<flags>classadd+children+childstat</flags>" in request
    assert f"<jobId>{job}</jobId>".encode() in request


def test_all_lists_the_callers_jobs(lb_server):
    """-all: every job of the caller on GLITE_WMS_QUERY_SERVER, one block each."""
    job, _ = register(lb_server)
    r = status(lb_server, "-all")
    assert r.returncode == 0, r.stderr
    assert job in field(r.stdout, "jobId")


def test_query_server_override(lb_server):
    """QUERY_SERVER_OVERRIDE sends a job id's query to GLITE_WMS_QUERY_SERVER."""
    job, _ = register(lb_server)
    elsewhere = job.replace(lb_server.address, "lb.invalid:9000")
    r = status(lb_server, elsewhere, GLITE_WMS_QUERY_SERVER_OVERRIDE="1")
    # the server is asked (and knows no such job) instead of lb.invalid being resolved
    assert "No such file or directory" in r.stderr or field(r.stdout, "jobId") == [elsewhere]
