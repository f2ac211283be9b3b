"""The shared parts of the consumer commands, in process: settings from the
environment, the query_ext condition language, JDL attributes, status and event
text, how answers and results become errors, sequence codes of registrations."""

from __future__ import annotations

import errno

import pytest

from conftest import SCENARIOS
from legacy_query_support import replay_scenario
from lbtx import ulm
from lbtx.cli.client_error import ClientError, strerror
from lbtx.cli.condition_text import (ConditionSyntaxError, parse_line, parse_lines,
                                     split_queries)
from lbtx.cli.environment import Address, AddressError, Settings, parse_server, query_address
from lbtx.cli.event_text import unparse_event
from lbtx.cli.glite.job_reg import registration_codes
from lbtx.cli.glite.state_history import field_getter, history, sort_events
from lbtx.cli.jdl import jdl_attribute
from lbtx.cli.program import exit_status, program_name
from lbtx.cli.query_client import interpret
from lbtx.cli.status_text import flat_block, status_block
from lbtx.cli.store_client import result_error
from lbtx.jobid import JobId
from lbtx.protocols.box.messages import Result, ResultCode
from lbtx.protocols.legacy_query import results_in
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.http import HTTPResponse
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.query.conditions import Attr, Op
from lbtx.schema import JobState, Source, StatCreamState, StatJobtype
from lbtx.status import JobStatus
from lbtx.timeval import Timeval

JOB = JobId.parse("https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg")


# --- environment ------------------------------------------------------------------

def test_settings_prefixes_defaults_and_maxima():
    """GLITE_WMS_ first, EDG_WL_ second; timeouts default to 120 s, capped by the maxima."""
    s = Settings.from_env({"EDG_WL_QUERY_SERVER": "old:1", "GLITE_WMS_QUERY_SERVER": "new:2",
                           "GLITE_WMS_QUERY_TIMEOUT": "99999", "EDG_WL_LOG_SYNC_TIMEOUT": "5",
                           "GLITE_WMS_QUERY_JOBS_LIMIT": "7"})
    assert s.query_server == "new:2"
    assert s.query_timeout == 1800 and s.sync_timeout == 5 and s.jobs_limit == 7
    d = Settings.from_env({"GLITE_WMS_QUERY_TIMEOUT": "soon"})
    assert d.query_timeout == 120 and d.sync_timeout == 120 and d.query_server is None
    assert d.proxy_serve_sock.endswith("lb_proxy_serve.sock")


def test_query_address_rules():
    """--server, then the job id (unless overridden), then GLITE_WMS_QUERY_SERVER."""
    env = Settings.from_env({"GLITE_WMS_QUERY_SERVER": "q.example.org"})
    assert query_address(env, JOB) == Address("lb.example.org", 9000)
    assert query_address(env) == Address("q.example.org", 9000)
    assert query_address(env, JOB, "x.example.org:1") == Address("x.example.org", 1)
    over = Settings.from_env({"GLITE_WMS_QUERY_SERVER": "q:5",
                              "GLITE_WMS_QUERY_SERVER_OVERRIDE": "true"})
    assert query_address(over, JOB) == Address("q", 5)
    with pytest.raises(AddressError):
        query_address(Settings.from_env({}))


@pytest.mark.parametrize("text,expected", [
    ("h:1", Address("h", 1)), ("h", Address("h", 9000)), ("[::1]:7", Address("::1", 7)),
    ("https://h:2/", Address("h", 2))])
def test_parse_server(text, expected):
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["", "h:x", "h:0", "h:70000", "a b", "h/p", "[::1"])
def test_parse_server_refuses(text):
    with pytest.raises(AddressError):
        parse_server(text)


# --- errors -----------------------------------------------------------------------

def test_error_texts():
    assert ClientError(43, "purged").text() == "Identifier removed (purged)"
    assert ClientError(1).text() == "Operation not permitted"
    assert strerror(ErrorCode.NOINDEX) == "No indexed condition in query"
    assert exit_status(1416) == 136 and exit_status(256) == 1


def doc(root, attrs="", body=""):
    return f"<{root}{attrs}>\r\n{body}</{root}>\r\n".encode()


@pytest.mark.parametrize("status,code", [(405, errno.ENXIO), (415, ErrorCode.ENOTSUP),
                                         (202, ErrorCode.ACCEPTED_OK), (500, 1408), (400, 1408)])
def test_interpret_hard_statuses(status, code):
    """405, 415, 202 and everything not soft are errors whatever the body says."""
    body = doc("edg_wll_QueryJobsResult", ' code="2" desc="x"')
    with pytest.raises(ClientError) as e:
        interpret(HTTPResponse(status, (), body), results_in.read_jobs)
    assert e.value.code == code


def test_interpret_soft_status_takes_the_body_error():
    body = doc("edg_wll_QueryEventsResult", ' code="7" desc="limit"')
    assert interpret(HTTPResponse(401, (), body), results_in.read_events) == ((7, "limit"), [])
    with pytest.raises(ClientError) as e:  # soft status but no error code: not trusted
        interpret(HTTPResponse(404, (), doc("edg_wll_QueryEventsResult")), results_in.read_events)
    assert e.value.code == ErrorCode.SERVER_RESPONSE
    with pytest.raises(ClientError):
        interpret(HTTPResponse(200, (), b"<not xml"), results_in.read_events)


def test_result_errors():
    assert result_error(Result(ResultCode.DUPLICATE)) is None
    assert result_error(Result(ResultCode.EXISTS, "job already registered")).text() == \
        "File exists (job already registered)"
    assert result_error(Result(ResultCode.NOT_OWNER)).code == errno.EPERM


# --- sequence codes of registrations ------------------------------------------------

def test_registration_codes():
    """Logged with +1, printed with +2 in the source's component (cli.md §0.2)."""
    logged, printed = registration_codes(Source.APPLICATION)
    assert logged.endswith("APP=000001:LBS=000000") and printed.endswith("APP=000002:LBS=000000")
    assert registration_codes(Source.CREAM_EXECUTOR)[0] == registration_codes(
        Source.CREAM_EXECUTOR)[1] == "UI=000000:NS=0000000000:WM=000000:BH=0000000000:" \
        "JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"
    assert registration_codes(Source.PBS_SERVER, pbs=True)[1] == \
        "CLIENT=000000:SERVER=0000000002:SCHED=000000:SMOM=000000:MOM=000000"


# --- the condition language --------------------------------------------------------

def test_condition_language():
    (ors,) = parse_lines(['status=running; status=DONE  destination="ce 1"'])
    # the same-attribute rule is the server's to enforce
    assert [(c.attr, c.op, c.value) for c in ors] == [
        (Attr.STATUS, Op.EQUAL, JobState.RUNNING), (Attr.STATUS, Op.EQUAL, JobState.DONE),
        (Attr.DESTINATION, Op.EQUAL, "ce 1")]
    (c,), = parse_lines(['time@"2024-05-01 00:00:00" "2024-05-02 00:00:00" Running'])
    assert (c.attr, c.op, c.value, c.value2, c.name) == (Attr.TIME, Op.WITHIN, 1714521600,
                                                         1714608000, "Running")
    (c,), = parse_lines(["jdl_attr=VOCE VirtualOrganisation"])
    assert (c.attr, c.value, c.name) == (Attr.JDL_ATTR, "VOCE", "VirtualOrganisation")
    (c,), = parse_lines(["owner=NULL"])
    assert c.value is None
    (c,), = parse_lines(["Color<>blue"])
    assert (c.attr, c.op, c.name, c.value) == (Attr.USERTAG, Op.UNEQUAL, "color", "blue")
    (c,), = parse_lines(["job_type=cream"])
    assert c.value is StatJobtype.CREAM
    (c,) = parse_line("time>1714521600", events=True)
    assert c.name == "Undefined"  # events: the server ignores the state
    (c,) = parse_line("source=userinterface", events=True)
    assert c.value is Source.USER_INTERFACE


@pytest.mark.parametrize("line,message", [
    ("status=bogus", "invalid status value (bogus)"),
    ("parent_job=nope", "cannot parse jobId"),
    ("time>1714521600", "missing state"),
    ("done_code=ok", "invalid done_code value"),
    ("x", "operator expected"),
    ('x="a"b', "unexpected text after a quoted value"),
    ("last_update_time>yesterday", "invalid time value"),
])
def test_condition_errors(line, message):
    with pytest.raises(ConditionSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_lines([line])


def test_event_only_sources():
    with pytest.raises(ConditionSyntaxError, match="invalid source"):
        parse_line("source=CREAMExecutor", events=True)


def test_split_queries():
    assert split_queries("a=1\nb=2\n\n\nc=3\n   \n") == [["a=1", "b=2"], ["c=3", "   "]]


# --- JDL --------------------------------------------------------------------------

@pytest.mark.parametrize("jdl,name,value", [
    ('[Executable="/bin/echo";VirtualOrganisation="voce";]', "virtualorganisation", "voce"),
    ('[ A = "x; y"; B = { "p", "q" }; C = other.D == 1; E = "q\\"uote" ]', "C", "other.D == 1"),
    ('[ A = "x; y"; B = { "p", "q" } ]', "A", "x; y"),
    ('[ E = "q\\"uote" ]', "E", 'q"uote'),
    ("blabla", "VirtualOrganisation", None),
    ('[ A = "unterminated ]', "A", None),
    (None, "A", None),
])
def test_jdl_attribute(jdl, name, value):
    assert jdl_attribute(jdl, name) == value


# --- status and event text ------------------------------------------------------------

def test_collection_block_nests_children():
    child = JobStatus(job_id=JOB.subjob(None, 0), state=JobState.RUNNING,
                      jobtype=StatJobtype.SIMPLE, parent_job=JOB)
    hist = [0] * 12
    hist[JobState.RUNNING] = 1
    parent = JobStatus(job_id=JOB, state=JobState.RUNNING, jobtype=StatJobtype.COLLECTION,
                       children_num=1, children_hist=hist)
    out = status_block(JobView(parent, children=[child.job_id],
                               children_states=[JobView(child)]))
    assert f"children :\n\tchildren : {child.job_id}\nchildren_states :\n\tstate : Running\n" in out
    assert "\tft_dest : (null)\n\nchildren_hist :\n     Undefined  0\n" in out
    assert "       Running  1\n" in out
    assert out.count("\nstate : ") == 0 and out.startswith("state : Running\n")


def test_cream_block_and_tags():
    st = JobStatus(job_id=JOB, state=JobState.RUNNING, jobtype=StatJobtype.CREAM,
                   cream_state=StatCreamState["CREAM_REALLY-RUNNING"],
                   user_tags={"hokus": "pokus"}, state_enter_time=Timeval(1714564800, 123456))
    out = status_block(st)
    assert "\ncream_state : really-running\n" in out
    assert '\n         hokus = "pokus"\n' in out
    assert "\nstateEnterTime : 1714564800.123456\n" in out
    assert "\ncream_done_code : -1\n" in out


def test_flat_block():
    out = flat_block(JobStatus(job_id=JOB, state=JobState.DONE, jobtype=StatJobtype.SIMPLE))
    assert out.startswith("STATUS:\tDone\n\nstate : Done\n") and out.endswith("\n\n")
    assert "\njobtype : 0\n" in out and "\ndone_code : -1\n" in out


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.json")), ids=lambda p: p.stem[:3])
def test_unparsed_events_read_back(path):
    """What job_log prints for every scenario event parses back to the same event."""
    replay = replay_scenario(path)
    for events in replay.table.events.values():
        for ev in events:
            line = unparse_event(ev)
            assert line.endswith("\n") and line.count("\n") == 1
            back = ulm.parse(line, require_user=True)
            assert back.type_name == ev.type_name and back.seqcode == ev.seqcode
            for spec in ev.attr_specs:
                if spec.type in ("string", "jobid") and getattr(ev, spec.py_name) is None:
                    assert f'{spec.ulm_key}=""' in line


def test_state_history_replays_in_seqcode_order():
    """Events arriving out of order are replayed by sequence code."""
    path = SCENARIOS / "P07-delayed-and-reordered-events.json"
    replay = replay_scenario(path)
    (job_id, events), = [(j, evs) for j, evs in replay.table.events.items()]
    ordered = sort_events(list(reversed(events)))
    assert [e.seqcode for e in ordered] == sorted(e.seqcode for e in events)
    steps = history(job_id, ordered)
    assert steps[0][1].state == JobState.SUBMITTED
    assert field_getter("done_code")(JobStatus()) == "-1"
    assert field_getter("NETWORK_SERVER")(JobStatus(network_server="ns")) == "ns"
    with pytest.raises(ValueError):
        field_getter("children_states")


def test_program_name(tmp_path):
    assert program_name("/nonexistent/dir/glite-lb-x") == "/nonexistent/dir/glite-lb-x"
    assert program_name("./glite-lb-x") == "./glite-lb-x"
    assert program_name("glite-lb-x") == "glite-lb-x"
