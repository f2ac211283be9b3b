"""The JSON API (sans I/O) over StoreQueryBackend and a real SQLite store holding
every scenario: job status with flags, events, user jobs, queries and event
queries, errors with their HTTP statuses, bad input, timeouts; the query port's
routing between the JSON API and the legacy service, which answer alike."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from zope.interface import implementer

from lbtx.protocols.legacy_query import IQueryBackend, QueryService, StatusFlag
from lbtx.protocols.legacy_query.escaping import to_wire
from lbtx.protocols.legacy_query.event_xml import event_json_object
from lbtx.protocols.legacy_query.http import HTTPRequest
from lbtx.protocols.legacy_query.messages import (QueryEventsRequest, QueryJobsRequest,
                                                  ResultLimit)
from lbtx.protocols.legacy_query.requests_out import write_request
from lbtx.protocols.legacy_query.results_in import read_events, read_jobs
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.query.conditions_json import query_to_json
from lbtx.schema import JobState
from lbtx.server.api import JsonApi, is_api_request
from lbtx.server.authz import Caller
from lbtx.server.queries import StoreQueryBackend
from lbtx.server.query_port import QueryPortHandler
from lbtx.status import to_json
from lbtx.timeval import NULL_TIME

from legacy_query_support import ReplayBackend
from server_query_support import ALICE, BOB, CAROL, all_lines, job_of, loaded_store, replay_of

SERVER = ("lb.example.org", 9000)
LINES = all_lines()
REPLAY = replay_of(LINES)
JOBS = sorted(REPLAY.jobs(), key=lambda r: r.job_id.unique)
P09 = job_of(REPLAY, "P09")
P10 = job_of(REPLAY, "P10", "D")
LEGACY_HEADERS = ("Accept: application/x-dglb", "User-Agent: edg_wll_Api/3.0/3.0")
MINE = [[{"attr": "owner", "value": None}]]


@pytest_twisted.async_yield_fixture(scope="module")
async def store(tmp_path_factory):
    s = await loaded_store(tmp_path_factory.mktemp("api") / "lbtx.sqlite", reactor, LINES)
    yield s
    await s.stop()


@pytest.fixture
def backend(store):
    return StoreQueryBackend(store)


@pytest.fixture
def api(backend):
    return JsonApi(backend, server=SERVER, clock=reactor)


def req(method: str, path: str, body=None, headers=()) -> HTTPRequest:
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return HTTPRequest(f"{method} {path} HTTP/1.1", tuple(headers), body)


async def call(api, method, path, body=None, caller=ALICE):
    """(status, JSON document) of one request."""
    response = await api.handle(req(method, path, body), caller)
    assert response.header("Content-Type").startswith("application/json")
    return response.status, json.loads(response.body)


def job_path(job_id, suffix="") -> str:
    return "/api/jobs/" + quote(str(job_id), safe="") + suffix


def test_is_api_request():
    assert is_api_request(req("GET", "/api/user-jobs"))
    assert is_api_request(req("POST", "/api/query?x"))
    assert is_api_request(req("GET", "/api"))
    assert not is_api_request(req("GET", "/apix"))
    assert not is_api_request(req("GET", "/"))
    assert not is_api_request(HTTPRequest("garbage"))


def test_the_backend_must_provide_the_interface():
    with pytest.raises(TypeError):
        JsonApi(object(), server=SERVER, clock=Clock())


# --- GET ------------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_every_status_equals_replay(api):
    for rec in JOBS:
        status, doc = await call(api, "GET", job_path(rec.job_id))
        assert status == 200
        assert doc["job"] == {"jobid": str(rec.job_id), "status": to_json(rec.status)}


@pytest_twisted.ensureDeferred
async def test_job_id_forms(api):
    """Encoded, with its slashes, or only the unique part (on this server)."""
    rec = JOBS[0]
    for path in (job_path(rec.job_id), f"/api/jobs/{rec.job_id}", f"/api/jobs/{rec.job_id.unique}"):
        status, doc = await call(api, "GET", path)
        assert status == 200 and doc["job"]["jobid"] == str(rec.job_id)
    status, doc = await call(api, "GET", "/api/jobs/https%3A%2F%2F")
    assert status == 400 and doc["name"] == "JOBID_FORMAT"


@pytest_twisted.ensureDeferred
async def test_flags(api, store):
    status, doc = await call(api, "GET", job_path(P10.job_id) +
                             "?flags=children,childhist&flags=childstat,history")
    assert status == 200
    job = doc["job"]
    assert job["children"] == [str(c) for c in P10.children]
    hist = job["children_hist"]
    assert len(hist) == len(JobState) and sum(hist.values()) == 2
    assert job["children_states"] == [to_json(REPLAY.table.get(c).status) for c in P10.children]
    stored = await store.job_events(P10.job_id)
    assert [e["type"] for e in job["history"]] == [s.event.type_name for s in stored]
    status, doc = await call(api, "GET", job_path(P10.job_id) + "?flags=classadd")
    assert status == 400 and "unknown flag" in doc["message"]
    status, doc = await call(api, "GET", job_path(P10.job_id) + "?colour=red")
    assert status == 400 and "unknown parameter" in doc["message"]


@pytest_twisted.ensureDeferred
async def test_job_events(api, backend):
    status, doc = await call(api, "GET", job_path(P09.job_id, "/events"))
    assert status == 200
    conditions = ((Condition(Attr.JOBID, Op.EQUAL, P09.job_id),),)
    answer = await backend.query_events(conditions, (), ResultLimit(), ALICE)
    assert doc["events"] == [event_json_object(e) for e in answer.events]
    assert len(doc["events"]) == len(REPLAY.table.events[P09.job_id])
    status, doc = await call(api, "GET", "/api/jobs/" + JOBS[0].job_id.unique[:-2] + "AA/events")
    assert status == 404 and doc["error"] == 2


@pytest_twisted.ensureDeferred
async def test_user_jobs_and_whoami(api):
    assert await call(api, "GET", "/api/user-jobs") == (200, {"jobs": [str(r.job_id)
                                                                      for r in JOBS]})
    assert await call(api, "GET", "/api/user-jobs", caller=CAROL) == (200, {"jobs": []})
    status, doc = await call(api, "GET", "/api/user-jobs", caller=None)
    assert status == 401 and doc["name"] == "EPERM"
    assert await call(api, "GET", "/api/whoami", caller=Caller(BOB, ["/vo"])) == \
        (200, {"identity": BOB, "fqans": ["/vo"]})
    assert await call(api, "GET", "/api/whoami", caller=None) == \
        (200, {"identity": None, "fqans": []})
    status, doc = await call(api, "GET", "/api/indexes")
    assert status == 200 and [{"attr": "owner"}] in doc["indexes"]


@pytest_twisted.ensureDeferred
async def test_access(api):
    """Anonymous callers get 401, callers without READ 403, ACL READ holders the job."""
    status, doc = await call(api, "GET", job_path(JOBS[0].job_id), caller=None)
    assert status == 401 and doc["error"] == 1
    status, doc = await call(api, "GET", job_path(JOBS[0].job_id), caller=CAROL)
    assert status == 403 and doc["name"] == "EPERM"
    status, doc = await call(api, "GET", job_path(P09.job_id), caller=BOB)
    assert status == 200
    status, doc = await call(api, "POST", "/api/query", {"conditions": [
        [{"attr": "owner", "value": ALICE}]]}, caller=BOB)
    assert [j["jobid"] for j in doc["jobs"]] == [str(P09.job_id)]


# --- POST --------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_query(api):
    status, doc = await call(api, "POST", "/api/query", {
        "conditions": MINE + [[{"attr": "status", "value": "Done"},
                               {"attr": "status", "value": "Cleared"}]],
        "flags": ["children"]})
    want = [r for r in JOBS if r.status.state in (JobState.DONE, JobState.CLEARED)]
    assert status == 200
    assert [(j["jobid"], j["status"]) for j in doc["jobs"]] == \
        [(str(r.job_id), to_json(r.status)) for r in want]
    assert all("children" in j for j in doc["jobs"])
    status, doc = await call(api, "POST", "/api/query", {"conditions": MINE, "limit": 2,
                                                         "results": "limited"})
    assert status == 200 and len(doc["jobs"]) == 2 and doc["partial"]["name"] == "E2BIG"
    status, doc = await call(api, "POST", "/api/query", {"conditions": MINE, "limit": 2})
    assert status == 400 and doc["name"] == "E2BIG"
    status, doc = await call(api, "POST", "/api/query", {"conditions": MINE}, caller=CAROL)
    assert (status, doc) == (200, {"jobs": []})


@pytest_twisted.ensureDeferred
async def test_event_query(api):
    status, doc = await call(api, "POST", "/api/events", {
        "conditions": [[{"attr": "jobid", "value": str(P09.job_id)}]],
        "event_conditions": [[{"attr": "type", "value": "UserTag"}]]})
    assert status == 200
    assert [e["type"] for e in doc["events"]] == ["UserTag"] * sum(
        1 for e in REPLAY.table.events[P09.job_id] if e.type_name == "UserTag")
    status, doc = await call(api, "POST", "/api/events", {
        "conditions": [[{"attr": "jobid", "value": str(P09.job_id)}]],
        "event_conditions": [[{"attr": "level", "op": "greater", "value": 99}]]})
    assert (status, doc) == (200, {"events": []})
    status, doc = await call(api, "POST", "/api/events", {
        "conditions": [[{"attr": "jobid", "value": str(P09.job_id)}]], "limit": 1,
        "results": "limited"})
    assert len(doc["events"]) == 1 and doc["partial"]["error"] == 7


@pytest.mark.parametrize("body,name,words", [
    (b"", "EINVAL", "needs a JSON document"),
    (b"{not json", "EINVAL", "malformed JSON"),
    (b"\xff\xfe", "EINVAL", "malformed JSON"),
    (b"[" * 200_000 + b"]" * 200_000, "EINVAL", "malformed JSON"),
    (b"[]", "EINVAL", "JSON object"),
    ({"conditions": MINE, "colour": 1}, "EINVAL", "unknown key"),
    ({}, "EINVAL", "unrestricted"),
    ({"conditions": []}, "EINVAL", "unrestricted"),
    ({"conditions": [[{"attr": "colour", "value": 1}]]}, "EINVAL", "unknown attribute"),
    ({"conditions": [[{"attr": "owner", "value": None},
                      {"attr": "status", "value": "Done"}]]}, "EINVAL", "same attribute"),
    ({"conditions": [[{"attr": "status", "value": "Done"}]]}, "NOINDEX", "indexed"),
    ({"conditions": [[{"attr": "exitcode", "value": 0}] * 5000]}, "E2BIG", "more than"),
    ({"conditions": [[{"attr": "exitcode", "value": 0}]] * 300}, "E2BIG", "more than"),
    ({"conditions": MINE, "limit": -1}, "EINVAL", "limit"),
    ({"conditions": MINE, "limit": "10"}, "EINVAL", "limit"),
    ({"conditions": MINE, "results": "some"}, "EINVAL", "results"),
    ({"conditions": MINE, "flags": "children"}, "EINVAL", "flags"),
    ({"conditions": MINE, "results": "all", "limit": 1,
      "flags": []}, None, None),
])
@pytest_twisted.ensureDeferred
async def test_bad_queries(api, body, name, words):
    """Bad documents get 400 with the error's name and a message that says why."""
    status, doc = await call(api, "POST", "/api/query", body)
    if name is None:
        assert status == 200 and len(doc["jobs"]) == len(JOBS)
        return
    assert status == 400, doc
    assert doc["name"] == name and words in doc["message"]


@pytest_twisted.ensureDeferred
async def test_unknown_resources_and_methods(api):
    assert (await call(api, "GET", "/api/nothing"))[0] == 404
    assert (await call(api, "GET", "/api/jobs/"))[0] == 404
    assert (await call(api, "GET", "/api/query"))[0] == 405
    assert (await call(api, "POST", "/api/user-jobs", {}))[0] == 405
    assert (await call(api, "DELETE", job_path(JOBS[0].job_id)))[0] == 405


# --- deadlines and failures -------------------------------------------------------------

def test_a_slow_backend_times_out():
    """A backend call past the request timeout is answered 503 and cancelled."""
    clock = Clock()
    backend = ReplayBackend(hold=True, noauth=True)
    api = JsonApi(backend, server=SERVER, clock=clock, request_timeout=5)
    d = api.handle(req("GET", "/api/indexes"), ALICE)
    clock.advance(4)
    assert backend.held and not d.called
    clock.advance(2)
    response = d.result
    assert response.status == 503 and json.loads(response.body)["name"] == "ETIMEDOUT"
    assert backend.cancelled and clock.getDelayedCalls() == []


def test_an_answer_in_time_leaves_no_timer():
    clock = Clock()
    backend = ReplayBackend(hold=True, noauth=True)
    api = JsonApi(backend, server=SERVER, clock=clock, request_timeout=5)
    d = api.handle(req("GET", "/api/indexes"), ALICE)
    backend.held[0].callback([])
    assert d.result.status == 200 and clock.getDelayedCalls() == []


@implementer(IQueryBackend)
class _Broken(ReplayBackend):
    def user_jobs(self, caller):
        return fail(RuntimeError("boom"))


def test_a_broken_backend_is_a_500_and_a_log_line():
    api = JsonApi(_Broken(), server=SERVER, clock=Clock())
    with capturedLogs() as events:
        response = api.handle(req("GET", "/api/user-jobs"), ALICE).result
    assert response.status == 500 and json.loads(response.body)["message"] == \
        "internal server error"
    assert any("failed" in e.get("log_format", "") for e in events)


# --- both front ends ---------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_both_front_ends_answer_alike(backend):
    """The legacy protocol and the JSON API, over one backend, give the same jobs,
    statuses and events."""
    legacy = QueryService(backend, server=SERVER, clock=reactor)
    port = QueryPortHandler(legacy, JsonApi(backend, server=SERVER, clock=reactor))
    query = ((Condition(Attr.OWNER, Op.EQUAL, None),),
             (Condition(Attr.STATUS, Op.UNEQUAL, JobState.RUNNING),))
    flags = StatusFlag.CLASSADS | StatusFlag.CHILDREN
    path, doc = write_request(QueryJobsRequest(query, flags))
    answer = await port.handle(HTTPRequest(f"POST {path} HTTP/1.1", LEGACY_HEADERS,
                                           to_wire(doc)), ALICE)
    assert answer.status == 200
    _, legacy_jobs = read_jobs(answer.body)
    response = await port.handle(req("POST", "/api/query", {
        "conditions": query_to_json(query), "flags": ["children"]}), ALICE)
    api_jobs = json.loads(response.body)["jobs"]
    assert [str(j) for j, _ in legacy_jobs] == [j["jobid"] for j in api_jobs]
    assert len(api_jobs) == sum(1 for r in JOBS if r.status.state != JobState.RUNNING)
    for (job_id, view), job in zip(legacy_jobs, api_jobs):
        got = to_json(view.status)
        want = job["status"]
        carried = {k: v for k, v in got.items() if v is not None and k not in ("children",)}
        assert carried == {k: want[k] for k in carried}, job_id
        assert [str(c) for c in view.children or ()] == job["children"]
    events_req = QueryEventsRequest(((Condition(Attr.JOBID, Op.EQUAL, P09.job_id),),))
    path, doc = write_request(events_req)
    answer = await port.handle(HTTPRequest(f"POST {path} HTTP/1.1", LEGACY_HEADERS,
                                           to_wire(doc)), ALICE)
    _, legacy_events = read_events(answer.body)
    response = await port.handle(req("GET", job_path(P09.job_id, "/events")), ALICE)
    api_events = json.loads(response.body)["events"]
    assert [event_json_object(e) for e in legacy_events] == api_events
    assert all(e.arrived != NULL_TIME for e in legacy_events)
