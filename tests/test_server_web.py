"""The web view of the query port (formats.md §10, cli.md §4).

Pure parts first (targets, the ``?query=`` syntax, rendering of hostile values),
then real ``twistd lb-server`` processes: Alice's server holds every public
scenario plus a job whose fields carry markup; Bob's server over the same data
shows Bob only what an ACL grants him; an anonymous peer gets 401.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from lbtx import ulm
from lbtx.cli.environment import Address
from lbtx.cli.store_client import send_events
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.http import ResponseDecoder, format_request
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.protocols.legacy_query.messages import StatusFlag
from lbtx.query.conditions import Attr, Op
from lbtx.schema import JobState
from lbtx.server.web import paths
from lbtx.server.web.html_query import MAX_PARTS, WebQueryError, parse_query
from lbtx.server.web.render import job_detail, job_list
from lbtx.status import JobStatus

from server_query_support import ALICE, BOB, all_lines, job_of, replay_of
from test_server_query_process import _start, _stop

SERVER = ("lb.example.org", 9000)
#: the servers own the job ids of the scenarios
NAME = ("--server-name", "lb.example.org:9000")
LINES = all_lines()
REPLAY = replay_of(LINES)
P09 = job_of(REPLAY, "P09")          # Bob has READ on it through its ChangeACL
P01 = job_of(REPLAY, "P01")
HOSTILE = JobId.parse("https://lb.example.org:9000/hostileJobXSS00000001")
HOSTILE_LINES = [
    f'DATE=20240301120000.000000 HOST="ui.example.org" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
    f'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="RegJob" DG.JOBID="{HOSTILE}" '
    f'DG.SEQCODE="UI=000001:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:'
    f'LRMS=000000:APP=000000:LBS=000000" DG.USER="{ALICE}" '
    f'DG.REGJOB.JDL="[ Executable = \\"<script>alert(1)</script>\\"; ]" '
    f'DG.REGJOB.NS="ns.example.org" DG.REGJOB.PARENT="" DG.REGJOB.JOBTYPE="SIMPLE" '
    f'DG.REGJOB.NSUBJOBS="0" DG.REGJOB.SEED=""\n',
]


# --- targets -------------------------------------------------------------------------
@pytest.mark.parametrize("target, kind, fields", [
    ("/", paths.JobList, {"query": None, "text": False}),
    ("/?text", paths.JobList, {"text": True}),
    ("/?query=status=running?text", paths.JobList, {"query": "status=running", "text": True}),
    ("/abcDEF_-0123456789?flags=history?text", paths.JobDetail,
     {"text": True, "flags": StatusFlag.HISTORY}),
    ("/NOTIF:", paths.NotifList, {"which": "my"}),
    ("/NOTIF?all", paths.NotifList, {"which": "all"}),
    ("/NOTIF:?foreign?text", paths.NotifList, {"which": "foreign", "text": True}),
    ("/NOTIF:Hc2s8dQw0pLkT6uYv1nBzA", paths.NotifDetail, {"unique": "Hc2s8dQw0pLkT6uYv1nBzA"}),
    ("/RSS:finished", paths.RssFeed, {"feed": "finished"}),
    ("/?configuration?text", paths.ServerPage, {"name": "configuration", "text": True}),
    ("/?stats", paths.ServerPage, {"name": "stats"}),
    ("/?version", paths.ServerPage, {"name": "version"}),
])
def test_targets(target, kind, fields):
    page = paths.parse_target(target, SERVER)
    assert isinstance(page, kind)
    for name, value in fields.items():
        assert getattr(page, name) == value
    if kind is paths.JobDetail:
        assert str(page.job_id) == "https://lb.example.org:9000/abcDEF_-0123456789"


@pytest.mark.parametrize("target, status", [
    ("/favicon.ico", 404),
    ("/?wsdl", 501),
    ("/a/b", 400),
    ("/<script>", 400),
    ("/caf\u00e9", 400),
    ("/NOTIF:../../etc", 400),
    ("/?bogus=1", 400),
    ("relative", 400),
    ("/" + "a" * (paths.MAX_TARGET + 1), 400),
])
def test_bad_targets(target, status):
    page = paths.parse_target(target, SERVER)
    assert isinstance(page, paths.BadPage) and page.status == status


# --- the ?query= syntax -------------------------------------------------------------
def test_query_syntax_of_the_spec():
    q = parse_query("status=scheduled|=running&lastupdatetime>past86400", now=100_000)
    assert [[(c.attr, c.op, c.value) for c in g] for g in q] == [
        [(Attr.STATUS, Op.EQUAL, JobState.SCHEDULED), (Attr.STATUS, Op.EQUAL, JobState.RUNNING)],
        [(Attr.LASTUPDATETIME, Op.GREATER, 100_000 - 86400)]]
    q = parse_query("OWNER%3D%2FCN%3DAlice&exitcode<>0|><2", now=0)
    assert [[(c.attr, c.op, c.value) for c in g] for g in q] == [
        [(Attr.OWNER, Op.EQUAL, "/CN=Alice")],
        [(Attr.EXITCODE, Op.UNEQUAL, 0), (Attr.EXITCODE, Op.UNEQUAL, 2)]]


@pytest.mark.parametrize("text, unsupported", [
    ("", False), ("status", False), ("status=", False), ("status=bogus", False),
    ("nosuch=1", False), ("status=<<running", False), ("jobid=notanid", False),
    ("exitcode=abc", False), ("owner<x", False),
    ("level=1", True), ("type=RegJob", True), ("usertag=x", True),
    ("&".join(["status=running"] * (MAX_PARTS + 1)), False),
])
def test_bad_queries(text, unsupported):
    with pytest.raises(WebQueryError) as e:
        parse_query(text, now=0)
    assert e.value.unsupported is unsupported and e.value.reason


# --- rendering ------------------------------------------------------------------------
def test_values_are_escaped_in_html():
    s = JobStatus(job_id=HOSTILE, owner='<b onmouseover="x">me</b>', state=JobState.SUBMITTED,
                  jdl='[ Executable = "<script>alert(1)</script>"; ]')
    page = job_detail(JobView(s), text=False).body.decode()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b onmouseover" not in page
    listing = job_list([(str(HOSTILE) + '"><script>', JobView(s))], "<i>x</i>",
                       text=False).body.decode()
    assert "<script>" not in listing and "<i>x</i>" not in listing


def test_text_detail_is_one_line_per_key():
    s = JobStatus(job_id=HOSTILE, owner="me", state=JobState.SUBMITTED, jdl='[\n a = "b";\n]')
    lines = job_detail(JobView(s), text=True).body.decode().splitlines()
    keys = [line.split("=", 1)[0] for line in lines]
    assert len(keys) == len(set(keys))
    assert "Job=" + str(HOSTILE) in lines and "Status=Submitted" in lines
    assert 'jdl=[\\n a = \\"b\\";\\n]' in lines


# --- against real servers -------------------------------------------------------------------
def _get(port: int, target: str, *, accept: str = "*/*", agent: str = "curl/8.0",
         timeout: float = 10):
    request = format_request(f"GET {target} HTTP/1.1",
                             (f"User-Agent: {agent}", f"Accept: {accept}", "Host: x"), None)
    decoder = ResponseDecoder()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got = decoder.feed(chunk)
            if got:
                return got[0]
    raise AssertionError(f"no answer to GET {target[:80]}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    data = tmp / "data"
    alice, alice_port, store = _start(tmp, "alice", data, ALICE, *NAME)
    try:
        results = send_events(Address("127.0.0.1", store),
                              [ln.rstrip("\n").encode() for ln in LINES + HOSTILE_LINES],
                              timeout=30)
        assert all(r.accepted for r in results), [r for r in results if not r.accepted]
        bob, bob_port, _ = _start(tmp, "bob", data, BOB, *NAME)
        anon, anon_port, _ = _start(tmp, "anon", data, "anonymous", *NAME)
        try:
            yield alice_port, bob_port, anon_port
        finally:
            _stop(bob)
            _stop(anon)
    finally:
        _stop(alice)


def _path(job_id) -> str:
    return "/" + JobId.parse(str(job_id)).unique


def test_job_list_of_the_owner(servers):
    alice, _, _ = servers
    owned = sorted({str(r.job_id) for r in REPLAY.jobs() if r.owner == ALICE} | {str(HOSTILE)})
    r = _get(alice, "/?text")
    assert r.status == 200 and r.header("Content-Type").startswith("text/plain")
    lines = r.body.decode().splitlines()
    assert lines[1] == f"User_subject={ALICE}"
    assert sorted(lines[0].removeprefix("User_jobs=").split(",")) == owned
    html = _get(alice, "/").body.decode()
    assert f"Total of {len(owned)}" in html
    for job in owned:
        assert f'<a href="{job}">' in html
    assert "<script>" not in html


def test_job_detail_matches_the_replay(servers):
    alice, _, _ = servers
    want = P01.status
    r = _get(alice, _path(P01.job_id) + "?text")
    assert r.status == 200
    fields = dict(line.split("=", 1) for line in r.body.decode().splitlines())
    assert fields["Job"] == str(P01.job_id)
    assert fields["Status"] == want.state.text
    assert fields["owner"] == ALICE
    assert fields["destination"] == (want.destination or "")
    assert fields["history"] == ""
    html = _get(alice, _path(P01.job_id)).body.decode()
    assert str(P01.job_id) in html and f"<td>{want.state.text}</td>" in html
    history = _get(alice, _path(P01.job_id) + "?flags=history?text").body.decode()
    escaped = re.search(r"^history=(.*)$", history, re.M).group(1)
    events = json.loads(ulm.unescape_text(escaped))
    assert len(events) == len(REPLAY.table.events[P01.job_id]) > 1


def test_hostile_fields_are_escaped_on_the_page(servers):
    alice, _, _ = servers
    html = _get(alice, _path(HOSTILE)).body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


def test_unknown_job_and_bad_paths(servers):
    alice, _, _ = servers
    assert _get(alice, "/NoSuchJobAtAll0000000001").status == 404
    assert _get(alice, "/favicon.ico").status == 404
    assert _get(alice, "/a/b/c").status == 400
    assert _get(alice, "/" + "x" * 11000).status == 400
    assert _get(alice, "/?query=nosuch=1").status == 579
    assert _get(alice, "/?query=level=1").status == 501


def test_query_page(servers):
    alice, _, _ = servers
    want = sorted(str(r.job_id) for r in REPLAY.jobs()
                  if r.owner == ALICE and r.status.state == JobState.CLEARED)
    r = _get(alice, "/?query=owner=" + ALICE.replace(" ", "%20") + "&status=cleared?text")
    assert r.status == 200, r.body
    got = r.body.decode().splitlines()[0].removeprefix("User_jobs=")
    assert sorted(filter(None, got.split(","))) == want


def test_another_user_sees_only_what_the_acl_grants(servers):
    _, bob, _ = servers
    r = _get(bob, _path(P01.job_id) + "?text")
    assert r.status == 401 and ALICE not in r.body.decode()   # EPERM, as §7.16 maps it
    assert _get(bob, _path(HOSTILE)).status == 401
    granted = _get(bob, _path(P09.job_id) + "?text")
    assert granted.status == 200 and f"Job={P09.job_id}" in granted.body.decode()
    listing = _get(bob, "/?text").body.decode()
    assert listing.splitlines()[0] == "User_jobs="      # Bob owns no job
    query = _get(bob, "/?query=owner=" + ALICE.replace(" ", "%20") + "?text").body.decode()
    assert query.splitlines()[0] == f"User_jobs={P09.job_id}"


def test_anonymous_callers_get_401(servers):
    _, _, anon = servers
    for target in ("/", "/?text", _path(P01.job_id), "/RSS:running", "/?version"):
        assert _get(anon, target).status == 401


def test_rss_and_server_pages(servers):
    alice, _, _ = servers
    rss = _get(alice, "/RSS:finished")
    assert rss.status == 200 and b'<rss version="2.0">' in rss.body and b"LB feed" in rss.body
    assert _get(alice, "/RSS:nosuchfeed").status == 404
    version = _get(alice, "/?version?text").body.decode()
    assert version.startswith("server_version=")
    config = _get(alice, "/?configuration?text").body.decode().splitlines()
    assert f"client_identity={ALICE}" in config
    assert any(line.startswith("msg_brokers=") for line in config)
    assert any(line.startswith("msg_prefixes=") for line in config)


def test_api_clients_still_get_the_legacy_protocol(servers):
    alice, _, _ = servers
    r = _get(alice, _path(P01.job_id), accept="application/x-dglb", agent="edg_wll_Api/3.0/3.0")
    assert r.status == 200 and b"<jobStat" in r.body
