"""``twistd lb-server`` queries end to end: real server processes, real sockets, real
SQLite and PostgreSQL.

Every public scenario goes through the intake of a running server; then every
job's status, read back through the legacy query protocol and through the JSON
API, equals what ``lbtx replay`` computes (on the fields each front end carries).
A second server process over the same data, whose plaintext peers are another
user, sees only the job whose ACL grants that user READ. Unix-socket peers are
their Unix user. Bad input (unknown attributes, huge condition lists, malformed
JSON, garbage, silent clients) gets clear errors or a timed-out close, and the
server keeps serving.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from io import BytesIO
from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, FileBodyProducer, ResponseDone
from twisted.web.http_headers import Headers

from conftest import REPO
from lbtx.cli.client_error import ClientError
from lbtx.testing.ports import free_port
from lbtx.cli.environment import Address
from lbtx.cli.query_client import API_HEADERS, QueryClient
from lbtx.cli.store_client import send_events
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.escaping import to_wire
from lbtx.protocols.legacy_query.http import ResponseDecoder, format_request
from lbtx.protocols.legacy_query.messages import QueryJobsRequest, StatusFlag as F
from lbtx.protocols.legacy_query.requests_out import write_request
from lbtx.protocols.legacy_query.results_in import read_result
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.status import JobStatus, to_json

from server_query_support import ALICE, BOB, all_lines, job_of, replay_of

IDLE = 1.0  # --idle-timeout of the servers, seconds
LINES = all_lines()
REPLAY = replay_of(LINES)
JOBS = sorted(REPLAY.jobs(), key=lambda r: r.job_id.unique)
P09 = job_of(REPLAY, "P09")
#: fields a jobStat element does not carry (or only on request)
NOT_IN_JOBSTAT = {"user_fqans", "jdl_classad", "history", "children", "children_states"}


def _start(tmp, name: str, data, identity: str, *extra: str):
    query, store = free_port(), free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = tmp / f"{name}.log"
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "twistd"), "-n", "--logfile", str(log),
         "--pidfile", str(tmp / f"{name}.pid"), "lb-server", "--data-dir", str(data),
         "--listen-query", f"tcp:{query}:interface=127.0.0.1",
         "--listen-store", f"tcp:{store}:interface=127.0.0.1",
         "--peer-identity", identity, "--idle-timeout", str(IDLE),
         "--request-timeout", "20", *extra],
        cwd=tmp, env=env)
    deadline = time.monotonic() + 30
    for port in (store, query):
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(log.read_text() if log.exists() else "server exited")
                if time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError("lb-server did not listen within 30 s")
                time.sleep(0.05)
    return proc, query, store


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _url(dsn: str) -> str:
    """A ``key=value`` libpq connection string as the postgresql:// URL of --db."""
    kv = dict(part.split("=", 1) for part in dsn.split())
    auth = quote(kv.get("user", ""), safe="")
    if kv.get("password"):
        auth += ":" + quote(kv["password"], safe="")
    return (f"postgresql://{auth}{'@' if auth else ''}{kv.get('host', '127.0.0.1')}:"
            f"{kv.get('port', '5432')}/{kv['dbname']}")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def servers(request, tmp_path_factory):
    """Alice's server fed every scenario, then Bob's server over the same database
    (SQLite in a shared data directory, or one PostgreSQL database).

    Alice's server also listens on a Unix socket. Yields ``(alice port, bob port,
    unix socket path, alice's process)``.
    """
    tmp = tmp_path_factory.mktemp("qp")
    data = tmp / "data"
    sock = tmp / "q.sock"
    db = []
    if request.param == "postgres":
        db = ["--db", _url(request.getfixturevalue("pg_cluster").create_database())]
    alice, alice_port, store = _start(tmp, "alice", data, ALICE,
                                      "--listen-query", f"unix:{sock}", *db)
    try:
        results = send_events(Address("127.0.0.1", store),
                              [ln.rstrip("\n").encode("utf-8") for ln in LINES], timeout=30)
        assert all(r.accepted for r in results), [r for r in results if not r.accepted]
        bob, bob_port, _ = _start(tmp, "bob", data, BOB, *db)
        try:
            yield alice_port, bob_port, str(sock), alice
        finally:
            _stop(bob)
    finally:
        _stop(alice)


def _public(status: JobStatus) -> dict:
    return {k: v for k, v in to_json(status).items() if k not in NOT_IN_JOBSTAT}


# --- the legacy protocol -------------------------------------------------------------------

def test_every_status_through_the_legacy_protocol(servers):
    """jobStat of every scenario job equals lbtx replay's status."""
    client = QueryClient(Address("127.0.0.1", servers[0]), timeout=10)
    for rec in JOBS:
        view = client.job_status(rec.job_id, F.CLASSADS | F.CHILDREN | F.CHILDHIST_FAST)
        assert _public(view.status) == _public(rec.status), rec.job_id
        assert view.children == (list(rec.children) or None)
    error, jobs = client.user_jobs()
    assert error is None and [j for j, _ in jobs] == [r.job_id for r in JOBS]


def test_events_through_the_legacy_protocol(servers):
    client = QueryClient(Address("127.0.0.1", servers[0]), timeout=10)
    for rec in JOBS[:4]:
        events = client.job_log(rec.job_id)
        assert sorted(e.seqcode for e in events) == \
            sorted(e.seqcode for e in REPLAY.table.events[rec.job_id])


def test_another_user_reads_only_what_the_acl_grants(servers):
    """Bob's server (same data): P09 (ChangeACL READ for Bob) and nothing else."""
    client = QueryClient(Address("127.0.0.1", servers[1]), timeout=10)
    view = client.job_status(P09.job_id, F.CLASSADS)
    assert _public(view.status) == _public(P09.status)
    other = next(r for r in JOBS if r.job_id != P09.job_id)
    with pytest.raises(ClientError) as e:
        client.job_status(other.job_id)
    assert e.value.code == ErrorCode.EPERM
    error, jobs = client.query_jobs(((Condition(Attr.OWNER, Op.EQUAL, ALICE),),))
    assert error is None and [j for j, _ in jobs] == [P09.job_id]
    error, jobs = client.user_jobs()
    assert error[0] == ErrorCode.ENOENT and jobs == []


def _raw(port: int, data: bytes, timeout: float = 10) -> list:
    """Send bytes, read responses until the server closes or the deadline passes."""
    decoder = ResponseDecoder()
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += decoder.feed(chunk)
        except socket.timeout:
            pass
    return out


def _legacy_post(path: str, doc: str) -> bytes:
    return format_request(f"POST {path} HTTP/1.1", API_HEADERS, to_wire(doc))


def test_bad_legacy_requests_get_clear_errors(servers):
    """Unknown attributes and huge condition lists are refused with a reason; the
    connection and the server go on."""
    port = servers[0]
    _, good = write_request(QueryJobsRequest(((Condition(Attr.JOBID, Op.EQUAL, P09.job_id),),)))
    unknown = good.replace("jobId>", "colour>")
    huge = ("<edg_wll_QueryJobsRequest softLimit=\"0\" queryRes=\"0\"><flags></flags><and>"
            "<orJobConditions>" + "<equal><exitcode>0</exitcode></equal>" * 5000
            + "</orJobConditions></and></edg_wll_QueryJobsRequest>")
    answers = _raw(port, _legacy_post("/queryJobs", unknown) + _legacy_post("/queryJobs", huge)
                   + _legacy_post("/queryJobs", good), timeout=IDLE + 5)
    assert [a.status for a in answers] == [400, 400, 200]
    (code, desc), _ = read_result(answers[0].body, "edg_wll_QueryJobsResult")
    assert code == ErrorCode.XML_PARSE and "colour" in desc
    (code, desc), _ = read_result(answers[1].body, "edg_wll_QueryJobsResult")
    assert code == ErrorCode.E2BIG and "conditions" in desc


def test_silent_and_garbage_clients_are_dropped(servers):
    """A client that sends nothing (or half a request) is closed after the idle
    timeout; garbage gets 400 and a close; others are served meanwhile."""
    port = servers[0]
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)
    half = socket.create_connection(("127.0.0.1", port), timeout=10)
    half.sendall(b"POST /queryJobs HTTP/1.1\r\nContent-Length: 100\r\n\r\n<edg_wll")
    started = time.monotonic()
    answers = _raw(port, b"\x16\x03\x01 not http at all\n\r\n")
    assert [a.status for a in answers] == [400]
    client = QueryClient(Address("127.0.0.1", port), timeout=10)
    assert client.job_status(P09.job_id).status.job_id == P09.job_id
    for s in (silent, half):
        with s:
            assert s.recv(100) == b""  # closed by the server
    assert IDLE * 0.9 <= time.monotonic() - started < IDLE + 8


def test_unix_socket_peers_are_their_unix_user(servers):
    """On a Unix socket the caller is unix:<user> (SO_PEERCRED), not --peer-identity."""
    _, _, path, _ = servers
    me = pwd.getpwuid(os.getuid()).pw_name
    decoder = ResponseDecoder()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(format_request("GET /api/whoami HTTP/1.1", ("Host: lb",)))
        answers = []
        while not answers:
            answers = decoder.feed(s.recv(65536))
    assert answers[0].status == 200
    assert json.loads(answers[0].body) == {"identity": f"unix:{me}", "fqans": []}


# --- the JSON API ------------------------------------------------------------------------

class _Body(Protocol):
    """Collects a response body; fires ``done`` with it."""

    def __init__(self, done: defer.Deferred):
        self.done = done
        self.parts: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.parts.append(data)

    def connectionLost(self, reason) -> None:
        if reason.check(ResponseDone):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


@defer.inlineCallbacks
def _api(port: int, method: str, path: str, body=None):
    agent = Agent(reactor)
    producer = None
    if body is not None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        producer = FileBodyProducer(BytesIO(raw))
    url = f"http://127.0.0.1:{port}{path}".encode()
    response = yield agent.request(method.encode(), url,
                                   Headers({"Content-Type": ["application/json"]}),
                                   producer).addTimeout(10, reactor)
    done = defer.Deferred()
    response.deliverBody(_Body(done))
    data = yield done.addTimeout(10, reactor)
    return response.code, json.loads(data)


def _job(job_id) -> str:
    return "/api/jobs/" + quote(str(job_id), safe="")


@pytest_twisted.inlineCallbacks
def test_every_status_through_the_json_api(servers):
    """GET /api/jobs/<id> of every scenario job equals lbtx replay's status; the
    children and history flags add what they say."""
    port = servers[0]
    for rec in JOBS:
        code, doc = yield _api(port, "GET", _job(rec.job_id) + "?flags=children,history")
        assert code == 200
        assert doc["job"]["status"] == to_json(rec.status), rec.job_id
        assert doc["job"]["children"] == [str(c) for c in rec.children]
        assert len(doc["job"]["history"]) == len(REPLAY.table.events[rec.job_id])
    code, doc = yield _api(port, "GET", "/api/user-jobs")
    assert (code, doc) == (200, {"jobs": [str(r.job_id) for r in JOBS]})
    code, doc = yield _api(port, "POST", "/api/query", {
        "conditions": [[{"attr": "owner", "value": None}]]})
    assert [to_json(r.status) for r in JOBS] == [j["status"] for j in doc["jobs"]]


@pytest_twisted.inlineCallbacks
def test_json_api_access(servers):
    """Bob's server answers the P09 job only; the others are 403."""
    port = servers[1]
    code, doc = yield _api(port, "GET", _job(P09.job_id))
    assert code == 200 and doc["job"]["status"] == to_json(P09.status)
    other = next(r for r in JOBS if r.job_id != P09.job_id)
    code, doc = yield _api(port, "GET", _job(other.job_id))
    assert code == 403 and doc["name"] == "EPERM"
    code, doc = yield _api(port, "GET", "/api/user-jobs")
    assert (code, doc) == (200, {"jobs": []})


@pytest_twisted.inlineCallbacks
def test_bad_json_requests(servers):
    """Malformed JSON, unknown attributes, huge condition lists: 400 with a reason."""
    port = servers[0]
    code, doc = yield _api(port, "POST", "/api/query", b"{\"conditions\": [[")
    assert code == 400 and "malformed JSON" in doc["message"]
    code, doc = yield _api(port, "POST", "/api/query", {"conditions": [[{"attr": "colour",
                                                                           "value": 1}]]})
    assert code == 400 and "unknown attribute" in doc["message"]
    code, doc = yield _api(port, "POST", "/api/query", {
        "conditions": [[{"attr": "exitcode", "value": 0}] * 5000]})
    assert code == 400 and doc["name"] == "E2BIG"
    code, doc = yield _api(port, "POST", "/api/query", {
        "conditions": [[{"attr": "status", "value": "Done"}]]})
    assert code == 400 and doc["error"] == ErrorCode.NOINDEX
    code, doc = yield _api(port, "GET", _job(P09.job_id))
    assert code == 200
