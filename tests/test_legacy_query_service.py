"""The legacy query service and its Twisted adapter, over a recording fake backend.

The backend (:class:`legacy_query_support.ReplayBackend`) answers from ``lbtx
replay`` of the public scenarios and records every call; it is checked against
:class:`IQueryBackend` first. Service tests inspect Deferreds without a reactor;
adapter tests use a ``StringTransport`` and a ``Clock``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyClass, verifyObject

from conftest import SCENARIOS
from lbtx.protocols.legacy_query import (ErrorCode, IQueryBackend, JobsAnswer,
                                         LegacyQueryFactory, LegacyQueryProtocol, QueryService,
                                         StatusFlag)
from lbtx.protocols.legacy_query.escaping import to_wire, unescape
from lbtx.protocols.legacy_query.http import (HTTPLimits, HTTPRequest, ResponseDecoder,
                                              format_request)
from lbtx.protocols.legacy_query.messages import (QueryEventsRequest, QueryJobsRequest,
                                                  QueryResults, ResultLimit, SequenceCodeRequest)
from lbtx.protocols.legacy_query.requests_out import write_request
from lbtx.protocols.legacy_query.service import REQUEST_TIMEOUT
from lbtx.query.conditions import Attr, Condition, Op

from legacy_query_support import ReplayBackend, replay_scenario

API = ("Cache-Control: no-cache", "Accept: application/x-dglb",
       "User-Agent: edg_wll_Api/3.0/3.0", "Content-Type: application/x-dglb")
SERVER = ("lb.example.org", 9000)
P10 = next(SCENARIOS.glob("P10-*.json"))


def post(req, headers=API) -> HTTPRequest:
    path, doc = write_request(req)
    return HTTPRequest(f"POST {path} HTTP/1.1", headers, to_wire(doc))


def get(path, headers=API) -> HTTPRequest:
    return HTTPRequest(f"GET {path} HTTP/1.1", headers)


def body(resp) -> ET.Element:
    return ET.fromstring(resp.body.decode("iso-8859-1"))


def error_of(resp):
    root = body(resp)
    return int(root.get("code")), unescape(root.get("desc") or "")


def jobid_query(job_id, flags=StatusFlag.NONE, **kw):
    return QueryJobsRequest(((Condition(Attr.JOBID, Op.EQUAL, job_id),),), flags, **kw)


def owner_query(owner, **kw):
    return QueryJobsRequest(((Condition(Attr.OWNER, Op.EQUAL, owner),),), **kw)


def test_fake_backend_provides_the_interface():
    """The recording fake is a faithful IQueryBackend."""
    verifyClass(IQueryBackend, ReplayBackend)
    verifyObject(IQueryBackend, ReplayBackend())


class ServiceTests(SynchronousTestCase):
    def setUp(self):
        self.replay = replay_scenario(P10)
        self.jobs = self.replay.jobs()
        self.parent = next(r for r in self.jobs if r.children)
        self.owner = self.parent.owner
        self.backend = ReplayBackend(self.replay, indices=[[(Attr.OWNER, None)]])
        self.clock = Clock()
        self.service = QueryService(self.backend, server=SERVER, clock=self.clock)

    def answer(self, request, caller=None):
        return self.successResultOf(self.service.handle(request, caller))

    def test_backend_must_provide_the_interface(self):
        """The service refuses a backend that does not declare IQueryBackend."""
        self.assertRaises(TypeError, QueryService, object(), server=SERVER, clock=self.clock)

    def test_job_status(self):
        """A queryJobs with one jobid condition: one edg_wll_Job with its jobStat."""
        resp = self.answer(post(jobid_query(self.parent.job_id, StatusFlag.CHILDREN)),
                           self.owner)
        self.assertEqual(resp.status, 200)
        self.assertIn("Content-Type: application/x-dglb", resp.headers)
        self.assertIn("Server: edg_wll_Server/3.0/3.0", resp.headers)
        (job,) = body(resp).findall("edg_wll_Job")
        self.assertEqual(job.find("jobId").text, str(self.parent.job_id))
        stat = job.find("jobStat")
        self.assertEqual(stat.get("name"), self.parent.status.state.text)
        self.assertEqual([c.text for c in stat.find("children")],
                         [str(c) for c in self.parent.children])
        name, conditions, flags, limit, caller = self.backend.calls[-1]
        self.assertEqual((name, flags, caller), ("query_jobs", StatusFlag.CHILDREN, self.owner))

    def test_not_owner_unknown_job_and_anonymous(self):
        """EPERM is 401, ENOENT 404, both with the error in the result document."""
        resp = self.answer(post(jobid_query(self.parent.job_id)), "/CN=Mallory")
        self.assertEqual(resp.status, 401)
        self.assertEqual(error_of(resp)[0], ErrorCode.EPERM)
        resp = self.answer(post(jobid_query(self.parent.job_id.subjob("x", 99))), self.owner)
        self.assertEqual((resp.status, error_of(resp)),
                         (404, (ErrorCode.ENOENT, "no matching jobs found")))

    def test_owner_null_is_the_caller(self):
        """<owner>NULL</owner> is resolved to the caller before the backend is asked."""
        resp = self.answer(post(owner_query(None)), self.owner)
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(body(resp).findall("edg_wll_Job")), len(self.jobs))
        self.assertEqual(self.backend.calls[-1][1][0][0].value, self.owner)
        resp = self.answer(post(owner_query(None)), None)
        self.assertEqual((resp.status, error_of(resp)[0]), (401, ErrorCode.EPERM))

    def test_query_rules(self):
        """No conditions, mixed attributes and queryRes ALL without a single owner
        condition are EINVAL (401 for queries); malformed XML is 400."""
        resp = self.answer(post(QueryJobsRequest(())), self.owner)
        self.assertEqual((resp.status, error_of(resp)),
                         (401, (ErrorCode.EINVAL, "unrestricted queries unsupported")))
        mixed = (b"<edg_wll_QueryJobsRequest><and><orJobConditions><equal><owner>x</owner>"
                 b"</equal><equal><status>Done</status></equal></orJobConditions></and>"
                 b"</edg_wll_QueryJobsRequest>")
        resp = self.answer(HTTPRequest("POST /queryJobs HTTP/1.1", API, mixed), self.owner)
        self.assertEqual((resp.status, error_of(resp)[0]), (401, ErrorCode.EINVAL))
        all_ = jobid_query(self.parent.job_id, limit=ResultLimit(0, QueryResults.ALL))
        resp = self.answer(post(all_), self.owner)
        self.assertEqual((resp.status, error_of(resp)[0]), (401, ErrorCode.EINVAL))
        resp = self.answer(HTTPRequest("POST /queryJobs HTTP/1.1", API, b"<oops"), self.owner)
        self.assertEqual((resp.status, error_of(resp)[0]), (400, ErrorCode.XML_PARSE))
        self.assertEqual(body(resp).tag, "edg_wll_QueryJobsResult")
        self.assertEqual([c[0] for c in self.backend.calls], [])

    def test_limits(self):
        """queryRes LIMITED: the first results plus E2BIG (401); NONE: only E2BIG;
        ALL with the single owner condition: everything."""
        lim = owner_query(self.owner, limit=ResultLimit(1, QueryResults.LIMITED))
        resp = self.answer(post(lim), self.owner)
        self.assertEqual((resp.status, error_of(resp)[0]), (401, ErrorCode.E2BIG))
        self.assertEqual(len(body(resp).findall("edg_wll_Job")), 1)
        resp = self.answer(post(owner_query(self.owner, limit=ResultLimit(1))), self.owner)
        self.assertEqual((resp.status, error_of(resp)[0], len(body(resp))),
                         (401, ErrorCode.E2BIG, 0))
        resp = self.answer(post(owner_query(self.owner, limit=ResultLimit(1, QueryResults.ALL))),
                           self.owner)
        self.assertEqual(len(body(resp).findall("edg_wll_Job")), len(self.jobs))

    def test_no_jobs_and_no_states(self):
        q = owner_query(self.owner)
        resp = self.answer(post(QueryJobsRequest(q.conditions, StatusFlag.NO_STATES)), self.owner)
        stats = [j.find("jobStat") for j in body(resp).findall("edg_wll_Job")]
        self.assertEqual({s.get("name") for s in stats}, {"Unknown"})
        resp = self.answer(post(QueryJobsRequest(q.conditions, StatusFlag.NO_JOBS)), self.owner)
        self.assertEqual([j.find("jobId") for j in body(resp).findall("edg_wll_Job")],
                         [None] * len(self.jobs))

    def test_query_events(self):
        """The job log: events of one job below a level; nothing matching is 404."""
        job = self.parent.job_id
        req = QueryEventsRequest(((Condition(Attr.JOBID, Op.EQUAL, job),),),
                                 ((Condition(Attr.LEVEL, Op.LESS, 9),),))
        resp = self.answer(post(req), self.owner)
        self.assertEqual(resp.status, 200)
        names = [e.get("name") for e in body(resp).findall("edg_wll_Event")]
        self.assertEqual(names, [e.type_name for e in self.replay.table.events[job]])
        req = QueryEventsRequest(req.job_conditions, ((Condition(Attr.LEVEL, Op.LESS, 0),),))
        resp = self.answer(post(req), self.owner)
        self.assertEqual((resp.status, body(resp).tag), (404, "edg_wll_QueryEventsResult"))

    def test_get_user_jobs_and_job_status(self):
        """GET / lists the caller's jobs; GET /<unique> is a jobStat with classadd+children;
        both need an authenticated caller."""
        resp = self.answer(get("/"), self.owner)
        self.assertEqual(body(resp).tag, "edg_wll_UserJobs")
        self.assertEqual([j.text for j in body(resp)], [str(r.job_id) for r in self.jobs])
        resp = self.answer(get("/" + self.parent.job_id.unique), self.owner)
        self.assertEqual((resp.status, body(resp).tag), (200, "jobStat"))
        self.assertIsNotNone(body(resp).find("jdl"))
        self.assertIsNotNone(body(resp).find("children"))
        self.assertEqual(self.backend.calls[-1][2], StatusFlag.CLASSADS | StatusFlag.CHILDREN)
        for path in ("/", "/" + self.parent.job_id.unique):
            resp = self.answer(get(path), None)
            self.assertEqual((resp.status, error_of(resp)[0]), (401, ErrorCode.EPERM))
        resp = self.answer(get("/NoSuchJob"), self.owner)
        self.assertEqual((resp.status, error_of(resp)[0]), (404, ErrorCode.ENOENT))
        resp = self.answer(get("/" + "a" * 5000), self.owner)
        self.assertEqual((resp.status, error_of(resp)[0]), (400, ErrorCode.JOBID_FORMAT))
        resp = self.answer(get("/" + self.parent.job_id.unique), "/CN=Mallory")
        self.assertEqual((resp.status, error_of(resp)[0]), (401, ErrorCode.EPERM))

    def test_sequence_code_and_indexed_attrs(self):
        job = self.parent.job_id
        resp = self.answer(post(SequenceCodeRequest(job, "NetworkServer")), self.owner)
        self.assertEqual(body(resp).find("sequence_code").text,
                         self.replay.table.events[job][-1].seqcode)
        resp = self.answer(post(SequenceCodeRequest(job.subjob("x", 5))), self.owner)
        self.assertEqual((resp.status, error_of(resp)[0]), (404, ErrorCode.ENOENT))
        resp = self.answer(HTTPRequest("POST /indexedAttrs HTTP/1.1", API, b"ignored"), None)
        attrs = [a.text for a in body(resp).iter("attribute")]
        self.assertEqual((resp.status, attrs), (200, ["EDG_WLL_QUERY_ATTR_OWNER"]))

    def test_unsupported_operations(self):
        """Notifications (503), purge (500), statistics (501): ENOSYS in their documents."""
        notif = (b'<edg_wll_NotifRequest function="New"><flags></flags>'
                 b"<notifChangeOp>EDG_WLL_NOTIF_NOOP</notifChangeOp></edg_wll_NotifRequest>")
        for path, doc, status, root in [
                ("/notifRequest", notif, 503, "edg_wll_NotifResult"),
                ("/purgeRequest", b"<edg_wll_PurgeRequest/>", 500, "edg_wll_PurgeResult"),
                ("/statsRequest", b"<x/>", 501, "edg_wll_StatsResult")]:
            resp = self.answer(HTTPRequest(f"POST {path} HTTP/1.1", API, doc), self.owner)
            self.assertEqual((resp.status, body(resp).tag, error_of(resp)[0]),
                             (status, root, ErrorCode.ENOSYS))

    def test_protocol_level_errors(self):
        """No User-Agent 400, incompatible version 415, other methods 405, unknown POST
        paths 400; HTML clients get pages (501, 401 for anonymous GET, ?text)."""
        cases = [
            (HTTPRequest("GET / HTTP/1.1", ("Accept: application/x-dglb",)), 400),
            (get("/", ("Accept: application/x-dglb", "User-Agent: edg_wll_Api/9.0/9.0")), 415),
            (HTTPRequest("PUT / HTTP/1.1", API), 405),
            (HTTPRequest("POST /queryjobs HTTP/1.1", API, b"<x/>"), 400),
            (HTTPRequest("POST /queryJobsX HTTP/1.1", API, b"<x/>"), 400),
            (get("/", ("User-Agent: Mozilla/5.0",)), 401),
        ]
        for request, status in cases:
            self.assertEqual(self.answer(request, None).status, status, request)
        resp = self.answer(get("/", ("User-Agent: Mozilla/5.0",)), self.owner)
        self.assertEqual(resp.status, 501)
        self.assertIn("Content-Type: text/html", resp.headers)
        self.assertIn(b"<h1>Not Implemented</h1>38: Function not implemented", resp.body)
        resp = self.answer(get("/?text", ("User-Agent: curl/8",)), self.owner)
        self.assertIn("Content-Type: text/plain", resp.headers)
        self.assertTrue(resp.body.startswith(b"Error=Not Implemented\nCode=38\n"))

    def test_version_21_clients(self):
        """2.x clients may query jobs and events, nothing else."""
        v21 = ("Accept: application/x-dglb", "User-Agent: edg_wll_Api/2.1/2.0,2.1")
        resp = self.answer(post(jobid_query(self.parent.job_id), v21), self.owner)
        self.assertEqual(resp.status, 200)
        self.assertEqual(self.answer(get("/", v21), self.owner).status, 400)
        self.assertEqual(self.answer(post(SequenceCodeRequest(self.parent.job_id), v21),
                                     self.owner).status, 400)

    def test_backend_bug_is_a_logged_500(self):
        """An unexpected backend exception is logged and answered 500."""
        def broken(*args):
            raise RuntimeError("boom")
        self.backend.query_jobs = broken
        with capturedLogs() as events:
            resp = self.answer(post(jobid_query(self.parent.job_id)), self.owner)
        self.assertEqual(resp.status, 500)
        self.assertEqual(body(resp).tag, "edg_wll_QueryJobsResult")
        self.assertTrue(any(e.get("log_failure") is not None for e in events))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_timeout_and_answer_in_time(self):
        """A backend slower than the request timeout gives ETIMEDOUT; an answer in time
        leaves no delayed call behind."""
        self.backend.hold = True
        d = self.service.handle(post(jobid_query(self.parent.job_id)), self.owner)
        self.assertNoResult(d)
        self.clock.advance(REQUEST_TIMEOUT + 1)
        resp = self.successResultOf(d)
        self.assertEqual((resp.status, error_of(resp)[0]), (500, ErrorCode.ETIMEDOUT))
        d = self.service.handle(post(SequenceCodeRequest(self.parent.job_id)), self.owner)
        self.backend.held[-1].callback("UI=000001")
        self.assertEqual(self.successResultOf(d).status, 200)
        self.assertEqual(self.clock.getDelayedCalls(), [])


# --- the Twisted adapter ------------------------------------------------------------------

class ProtocolTests(SynchronousTestCase):
    def setUp(self):
        self.replay = replay_scenario(P10)
        self.parent = next(r for r in self.replay.jobs() if r.children)
        self.backend = ReplayBackend(self.replay)
        self.clock = Clock()
        self.service = QueryService(self.backend, server=SERVER, clock=self.clock)
        self.factory = LegacyQueryFactory(self.service, self.clock,
                                          identify=lambda addr: self.parent.owner,
                                          limits=HTTPLimits(max_body=4096))
        self.proto = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def responses(self):
        return ResponseDecoder().feed(self.transport.value())

    def request(self, req=None) -> bytes:
        req = req or jobid_query(self.parent.job_id)
        path, doc = write_request(req)
        return format_request(f"POST {path} HTTP/1.1", API, to_wire(doc))

    def test_factory_builds_identified_protocols(self):
        self.assertIsInstance(self.proto, LegacyQueryProtocol)
        self.assertEqual(self.proto.caller, self.parent.owner)

    def test_request_answered(self):
        self.proto.dataReceived(self.request())
        (resp,) = self.responses()
        self.assertEqual(resp.status, 200)
        self.assertEqual(body(resp).find("edg_wll_Job/jobStat").get("name"),
                         self.parent.status.state.text)
        self.assertFalse(self.transport.disconnecting)

    def test_pipelined_requests_byte_by_byte(self):
        """Requests split anywhere and pipelined are answered in order."""
        wire = self.request() + self.request(SequenceCodeRequest(self.parent.job_id))
        for i in range(len(wire)):
            self.proto.dataReceived(wire[i:i + 1])
        statuses = [(r.status, body(r).tag) for r in self.responses()]
        self.assertEqual(statuses, [(200, "edg_wll_QueryJobsResult"),
                                    (200, "edg_wll_QuerySequenceCodeResult")])

    def test_idle_client_is_dropped(self):
        """A client that connects and sends nothing (or half a request) is closed
        after the idle timeout."""
        self.clock.advance(9)
        self.assertFalse(self.transport.disconnecting)
        self.proto.dataReceived(self.request()[:20])
        self.clock.advance(9.5)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.transport.value(), b"")

    def test_framing_error_gets_400_and_close(self):
        """A body over the limit: 400 with an error document, then the connection closes."""
        self.proto.dataReceived(b"POST /queryJobs HTTP/1.1\r\nUser-Agent: x/3.0/3.0\r\n"
                                b"Content-Length: 999999\r\n\r\n")
        (resp,) = self.responses()
        self.assertEqual((resp.status, error_of(resp)[0]), (400, ErrorCode.E2BIG))
        self.assertTrue(self.transport.disconnecting)
        self.proto.dataReceived(self.request())  # ignored after the error
        self.assertEqual(len(self.responses()), 1)

    def test_bad_request_keeps_connection(self):
        """A malformed document is answered 400; the connection serves the next request."""
        self.proto.dataReceived(format_request("POST /queryJobs HTTP/1.1", API, b"<x")
                                + self.request())
        self.assertEqual([r.status for r in self.responses()], [400, 200])
        self.assertFalse(self.transport.disconnecting)

    def test_budget_closes_after_the_answer_in_progress(self):
        """Once the connection's time budget is used up the server hangs up, but only
        after the answer in progress."""
        self.proto = LegacyQueryProtocol(self.service, self.clock, caller=self.parent.owner,
                                         budget=50)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)
        self.backend.hold = True
        self.proto.dataReceived(self.request())
        self.clock.advance(30)
        self.assertFalse(self.transport.disconnecting)  # no idle timeout while answering
        self.clock.advance(25)                          # budget used up, answer pending
        self.assertFalse(self.transport.disconnecting)
        self.backend.held[-1].callback(JobsAnswer([]))
        self.assertEqual([r.status for r in self.responses()], [200])
        self.assertTrue(self.transport.disconnecting)

    def test_connection_lost_cancels_pending_request(self):
        """A client that goes away cancels the backend call; nothing is written or logged."""
        self.backend.hold = True
        self.proto.dataReceived(self.request())
        self.proto.connectionLost(None)
        self.assertEqual(self.backend.cancelled, self.backend.held)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_many_pipelined_requests_pause_reading(self):
        """Reading pauses while too many requests wait, and resumes as they drain."""
        self.backend.hold = True
        self.proto.dataReceived(self.request() * 12)
        self.assertEqual(self.transport.producerState, "paused")
        while self.backend.held:
            self.backend.held.pop(0).callback(JobsAnswer([]))
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(len(self.responses()), 12)


@pytest.mark.parametrize("caller", [None, "/CN=someone"])
def test_anonymous_and_named_callers_reach_the_backend(caller):
    """The identity given by the factory is what the backend sees."""
    backend = ReplayBackend(replay_scenario(P10), noauth=True)
    clock = Clock()
    factory = LegacyQueryFactory(QueryService(backend, server=SERVER, clock=clock), clock,
                                 identify=lambda addr: caller)
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    job = next(iter(backend.table.jobs))
    path, doc = write_request(jobid_query(job))
    proto.dataReceived(format_request(f"POST {path} HTTP/1.1", API, to_wire(doc)))
    assert backend.calls[-1][-1] == caller
    assert ResponseDecoder().feed(transport.value())[0].status == 200


# --- whatever arrives, the service answers ------------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_BACKEND = ReplayBackend(replay_scenario(P10))
_SERVICE = QueryService(_BACKEND, server=SERVER, clock=Clock())
_LINES = st.sampled_from(["POST /queryJobs HTTP/1.1", "POST /queryEvents HTTP/1.1",
                          "POST /querySequenceCode HTTP/1.1", "POST /notifRequest HTTP/1.1",
                          "POST /indexedAttrs HTTP/1.1", "GET / HTTP/1.1", "GET /abc HTTP/1.1",
                          "GET /?text HTTP/1.1", "DELETE / HTTP/1.1", "POST", "", "GET  "])
_HEADERS = st.lists(st.sampled_from(list(API) + ["User-Agent: x", "Accept: text/html",
                                                 "User-Agent: a/2.1/2.1", "X: y"]), max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_LINES, _HEADERS, st.none() | st.binary(max_size=300), st.none() | st.text(max_size=20))
def test_every_request_gets_an_answer(line, headers, body, caller):
    """Any request line, headers, body and caller: an HTTP answer, no logged failure."""
    with capturedLogs() as events:
        d = _SERVICE.handle(HTTPRequest(line, tuple(headers), body), caller)
        results = []
        d.addBoth(results.append)
    (resp,) = results
    assert 200 <= resp.status < 600
    assert not [e for e in events if e.get("log_failure") is not None]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=500))
def test_garbage_on_the_wire(data):
    """Random bytes at the adapter: answers or a 400 and a close, never an exception."""
    clock = Clock()
    proto = LegacyQueryProtocol(_SERVICE, clock, caller=None)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"GET / HTTP/1.1\r\n" + data)
    clock.advance(11)
    assert transport.disconnecting
    for resp in ResponseDecoder().feed(transport.value()):
        assert 200 <= resp.status < 600
    proto.connectionLost(None)
    assert clock.getDelayedCalls() == []


def test_framing_error_behind_a_pending_request_is_answered_after_it():
    """Garbage pipelined behind a request: the request's answer, then 400, then close."""
    backend = ReplayBackend(replay_scenario(P10), noauth=True, hold=True)
    clock = Clock()
    proto = LegacyQueryProtocol(QueryService(backend, server=SERVER, clock=clock), clock)
    transport = StringTransport()
    proto.makeConnection(transport)
    job = next(iter(backend.table.jobs))
    path, doc = write_request(jobid_query(job))
    proto.dataReceived(format_request(f"POST {path} HTTP/1.1", API, to_wire(doc)))
    proto.dataReceived(b"GET / HTTP/1.1\nbare LF\n\n")
    assert transport.value() == b"" and not transport.disconnecting
    backend.held[-1].callback(JobsAnswer([]))
    assert [r.status for r in ResponseDecoder().feed(transport.value())] == [200, 400]
    assert transport.disconnecting
