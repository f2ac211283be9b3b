"""The legacy query service: requests in, answers out, over an :class:`IQueryBackend`.

:class:`QueryService` knows no sockets: :meth:`QueryService.handle` takes one
:class:`~.http.HTTPRequest` and the caller's identity and returns a Deferred that
fires with the :class:`~.http.HTTPResponse` - always, never failing: a backend
failure, a timeout or a bug becomes an error answer with the status of §7.16.

Rules applied here, before the backend is asked (formats.md §7.7-7.8, §8.3):

* a job query needs conditions ("unrestricted queries unsupported", ``EINVAL``);
* ``queryRes=2`` (ALL) needs a single ``owner`` condition (queryJobs) or a single
  ``jobid`` condition (queryEvents), else ``EINVAL``;
* ``<owner>NULL</owner>`` becomes the caller; an anonymous caller gets ``EPERM``.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, maybeDeferred, succeed
from twisted.logger import Logger

from lbtx.protocols.legacy_query import xml_out
from lbtx.protocols.legacy_query.errors import (ErrorCode, LBError, Operation, REASONS,
                                                error_text, http_status)
from lbtx.protocols.legacy_query.escaping import escape, to_wire
from lbtx.protocols.legacy_query.http import HTTPRequest, HTTPResponse
from lbtx.protocols.legacy_query.interfaces import EventsAnswer, IQueryBackend, JobsAnswer
from lbtx.protocols.legacy_query import maintenance_xml
from lbtx.protocols.legacy_query.jobstat import jobstat_element
from lbtx.protocols.legacy_query.maintenance_xml import DumpRequest, LoadRequest, PurgeRequest
from lbtx.protocols.legacy_query.messages import (
    IndexedAttrsRequest, JobStatusRequest, NotifRequest, QueryEventsRequest, QueryJobsRequest,
    QueryResults, SequenceCodeRequest, StatusFlag, UserJobsRequest)
from lbtx.protocols.legacy_query.negotiation import SERVER_HEADER, ClientKind
from lbtx.protocols.legacy_query.routing import Dispatch, Immediate, route
from lbtx.protocols.legacy_query.xml_tree import DEFAULT_LIMITS, XMLLimits
from lbtx.query.conditions import Attr, Condition, QueryError, check_job_query

__all__ = ["QueryService", "API_HEADERS", "REQUEST_TIMEOUT"]

REQUEST_TIMEOUT = 120.0  # seconds a backend may take for one request
API_HEADERS = ("Cache-Control: no-cache", SERVER_HEADER, "Content-Type: application/x-dglb")
_HTML_HEADERS = ("Cache-Control: no-cache", SERVER_HEADER, "Content-Type: text/html")
_TEXT_HEADERS = ("Cache-Control: no-cache", SERVER_HEADER, "Content-Type: text/plain")


def _error_body(doc: str | None, error: LBError) -> bytes | None:
    if doc is None:
        return None
    pair = (int(error.code), error.desc)
    if doc == "jobstat":
        text = (f'<jobStat name="Undefined" code="{pair[0]}" desc="{escape(pair[1])}">\r\n'
                f"</jobStat>")
    else:
        text = xml_out.error_document(doc, pair)
    return to_wire(text)


def _page(status: int, error: LBError | None, text: bool) -> HTTPResponse:
    reason = REASONS.get(status, "Unknown error")
    code = int(error.code) if error else 0
    what = error_text(code)
    desc = error.desc if error else ""
    if text:
        body = f"Error={reason}\nCode={code}\nDescription={what} ({desc})\n"
        return HTTPResponse(status, _TEXT_HEADERS, body.encode("utf-8", "surrogateescape"))
    body = (f"<html><head><title>Error</title></head><body><h1>{escape(reason)}</h1>"
            f"{code}: {escape(what)} ({escape(desc)})</body></html>")
    return HTTPResponse(status, _HTML_HEADERS, to_wire(body))


def _resolve_owner(conditions, caller: str | None):
    out = []
    for ors in conditions:
        row = []
        for c in ors:
            if c.attr == Attr.OWNER and c.value is None:
                if caller is None:
                    raise LBError(ErrorCode.EPERM, "owner NULL needs an authenticated caller")
                c = Condition(c.attr, c.op, caller, c.value2, c.name)
            row.append(c)
        out.append(tuple(row))
    return tuple(out)


def _single(conditions, attr: Attr) -> bool:
    return (len(conditions) == 1 and len(conditions[0]) == 1
            and conditions[0][0].attr == attr)


class QueryService:
    """Answers legacy query requests from a backend providing :class:`IQueryBackend`.

    ``server`` is ``(host, port)`` of this server, for ``GET /<unique>`` job ids;
    ``clock`` and ``request_timeout`` bound every backend call.
    """

    log = Logger()
    #: the answerer of ``/notifRequest`` (a LegacyNotifications), set by the server
    notifications = None
    #: the server's lbtx.server.maintenance.Maintenance (purge, dump, load), or None
    maintenance = None

    def __init__(self, backend, *, server: tuple[str, int], clock,
                 request_timeout: float = REQUEST_TIMEOUT, limits: XMLLimits = DEFAULT_LIMITS):
        if not IQueryBackend.providedBy(backend):
            raise TypeError(f"{backend!r} does not provide IQueryBackend")
        self._backend = backend
        self._server = server
        self._clock = clock
        self._timeout = request_timeout
        self._limits = limits

    def handle(self, request: HTTPRequest, caller: str | None) -> Deferred:
        """Fire with the :class:`HTTPResponse` to ``request`` from ``caller``.

        The Deferred fails only with ``CancelledError``, when the caller cancels it.
        """
        try:
            decision = route(request, caller, server=self._server, limits=self._limits)
        except Exception:
            self.log.failure("routing {line!r} failed", line=request.request_line[:200])
            decision = Immediate(500, LBError(ErrorCode.DB_CALL, "internal server error"))
        if isinstance(decision, Immediate):
            return succeed(self._immediate(decision))
        d = maybeDeferred(self._dispatch, decision, caller)
        d.addTimeout(self._timeout, self._clock)
        d.addErrback(self._failed, decision)
        return d

    # --- answers ------------------------------------------------------------
    def _immediate(self, imm: Immediate) -> HTTPResponse:
        status = imm.status
        if status is None:
            status = http_status(imm.operation, imm.error.code)
        if imm.kind == ClientKind.HTML:
            return _page(status, imm.error, imm.text)
        body = _error_body(imm.doc, imm.error) if imm.error is not None else None
        return HTTPResponse(status, API_HEADERS, body)

    def _failed(self, failure, decision: Dispatch) -> HTTPResponse:
        if failure.check(CancelledError):
            return failure  # the caller gave up (its connection is gone)
        if failure.check(LBError):
            error = failure.value
        elif failure.check(TimeoutError):
            self.log.warn("{request} took longer than {timeout} s",
                          request=type(decision.request).__name__, timeout=self._timeout)
            error = LBError(ErrorCode.ETIMEDOUT, "the server took too long to answer")
        else:
            self.log.failure("answering {request} failed", failure,
                             request=type(decision.request).__name__)
            error = LBError(ErrorCode.DB_CALL, "internal server error")
        status = http_status(decision.operation, error.code)
        body = None
        if not (error.code == ErrorCode.ENOMEM and decision.operation == Operation.QUERY):
            body = _error_body(decision.doc, error)
        return HTTPResponse(status, API_HEADERS, body)

    def _ok(self, decision: Dispatch, text: str, error=None) -> HTTPResponse:
        status = 200 if error is None else http_status(decision.operation, error[0])
        return HTTPResponse(status, API_HEADERS, to_wire(text))

    # --- dispatch -----------------------------------------------------------
    def _dispatch(self, decision: Dispatch, caller: str | None):
        req = decision.request
        b = self._backend
        if isinstance(req, QueryJobsRequest):
            conditions = self._check(req.conditions, req.limit.mode, Attr.OWNER, "owner")
            conditions = _resolve_owner(conditions, caller)
            d = b.query_jobs(conditions, req.flags, req.limit, caller)
            return d.addCallback(self._jobs, decision, req.flags)
        if isinstance(req, QueryEventsRequest):
            conditions = self._check(req.job_conditions, req.limit.mode, Attr.JOBID, "jobid")
            d = b.query_events(conditions, req.event_conditions, req.limit, caller)
            return d.addCallback(self._events, decision)
        if isinstance(req, JobStatusRequest):
            d = b.job_status(req.job_id, req.flags, caller)
            return d.addCallback(lambda view: self._ok(decision, jobstat_element(view, req.flags)))
        if isinstance(req, UserJobsRequest):
            d = b.user_jobs(caller)
            return d.addCallback(lambda ids: self._ok(decision, xml_out.user_jobs_result(ids)))
        if isinstance(req, SequenceCodeRequest):
            d = b.sequence_code(req.job_id, req.source, caller)
            return d.addCallback(
                lambda code: self._ok(decision, xml_out.sequence_code_result(code)))
        if isinstance(req, IndexedAttrsRequest):
            d = b.indexed_attributes()
            return d.addCallback(
                lambda idx: self._ok(decision, xml_out.indexed_attrs_result(idx)))
        if isinstance(req, NotifRequest):
            if self.notifications is None:  # .notifications.LegacyNotifications
                raise LBError(ErrorCode.ENOSYS, "notifications are not enabled")
            d = self.notifications.handle(req, caller)
            return d.addCallback(lambda text: self._ok(decision, text))
        if isinstance(req, (PurgeRequest, DumpRequest, LoadRequest)):
            return self._maintenance(req, decision, caller)
        raise LBError(ErrorCode.ENOSYS, f"{type(req).__name__} is not supported")

    def _maintenance(self, req, decision: Dispatch, caller):
        if self.maintenance is None:
            raise LBError(ErrorCode.ENOSYS, f"{type(req).__name__} is not enabled")
        m = self.maintenance
        if isinstance(req, PurgeRequest):
            def purged(answer):
                result, accepted = answer
                if accepted:
                    return HTTPResponse(202, API_HEADERS, None)
                return self._ok(decision, maintenance_xml.purge_result(result))
            return m.purge(req, caller).addCallback(purged)
        if isinstance(req, DumpRequest):
            return m.dump(req, caller).addCallback(
                lambda result: self._ok(decision, maintenance_xml.dump_result(result)))
        return m.load(req, caller).addCallback(
            lambda result: self._ok(decision, maintenance_xml.load_result(result)))

    @staticmethod
    def _check(conditions, mode: QueryResults, single: Attr, name: str):
        try:
            conditions = check_job_query(conditions)
        except QueryError as e:
            raise LBError(ErrorCode.EINVAL, e.reason) from None
        if mode == QueryResults.ALL and not _single(conditions, single):
            raise LBError(ErrorCode.EINVAL,
                          f"queryRes ALL needs a single {name} condition")
        return conditions

    def _jobs(self, answer: JobsAnswer, decision: Dispatch, flags: StatusFlag) -> HTTPResponse:
        rows = [(None if flags & StatusFlag.NO_JOBS else job_id,
                 None if flags & StatusFlag.NO_STATES else view)
                for job_id, view in answer.jobs]
        return self._ok(decision, xml_out.query_jobs_result(rows, flags, answer.error),
                        answer.error)

    def _events(self, answer: EventsAnswer, decision: Dispatch) -> HTTPResponse:
        return self._ok(decision, xml_out.query_events_result(answer.events, answer.error),
                        answer.error)
