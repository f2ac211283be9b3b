"""A small blocking client of the legacy query protocol (formats.md §7), for commands.

One request per connection over a plain TCP or Unix socket, the whole exchange
(connect, send, answer) bounded by one deadline. Requests are written by
:mod:`lbtx.protocols.legacy_query.requests_out` exactly as the legacy client lays
them out, with the legacy client's headers; answers are read by
:mod:`lbtx.protocols.legacy_query.results_in`.

Answers are interpreted as the legacy client library does (§7.16): ``200`` is
success; ``401 404 410 501 503 579`` are "soft": the body is read and the error
comes from its ``code``/``desc`` (a partial result may come with it); ``405`` is
``ENXIO``, ``415`` ``ENOTSUP``, ``202`` ``EDG_WLL_ERROR_ACCEPTED_OK``; anything
else is ``EDG_WLL_ERROR_SERVER_RESPONSE``. Every failure raises
:class:`~lbtx.cli.client_error.ClientError`.

>>> client = QueryClient(Address("lb.example.org", 9000), timeout=10)   # doctest: +SKIP
>>> view = client.job_status(JobId.parse("https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg"))
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Callable

from lbtx.cli.client_error import ClientError, from_os_error
from lbtx.cli.connection import connect
from lbtx.cli.environment import Address, DEFAULT_QUERY_TIMEOUT
from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query import results_in
from lbtx.protocols.legacy_query.errors import REASONS, ErrorCode, RequestError
from lbtx.protocols.legacy_query.escaping import to_wire
from lbtx.protocols.legacy_query.http import (HTTPFramingError, HTTPLimits, HTTPResponse,
                                              ResponseDecoder, format_request)
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.protocols.legacy_query.messages import (EventQuery, QueryEventsRequest,
                                                  QueryJobsRequest, ResultLimit, StatusFlag)
from lbtx.protocols.legacy_query.requests_out import write_request
from lbtx.query.conditions import Attr, Condition, JobQuery, Op
from lbtx.schema import Level

__all__ = ["QueryClient", "API_HEADERS", "SOFT_STATUSES", "JOB_LOG_LEVEL", "Answer"]

#: the headers of the legacy client library (an API request, protocol 3.0)
API_HEADERS = ("Cache-Control: no-cache", "Accept: application/x-dglb",
               "User-Agent: edg_wll_Api/3.0/3.0", "Content-Type: application/x-dglb")
#: statuses whose body carries the error (§7.16, client side)
SOFT_STATUSES = frozenset({401, 404, 410, 501, 503, 579})
#: the job log asks for events below this level (the library's SYSTEM level + 1)
JOB_LOG_LEVEL = int(Level.SYSTEM) + 1
#: answers may be big (many jobs with histories)
ANSWER_HTTP_LIMITS = HTTPLimits(max_line=64 * 1024, max_headers=100,
                                max_body=results_in.ANSWER_LIMITS.max_bytes)
_RECV = 256 * 1024

#: ``(error or None, content)``: a result and the error that came with it
Answer = tuple


class QueryClient:
    """Sends legacy query requests to one server.

    :param address: the server's query port (TCP) or serve socket (Unix).
    :param timeout: seconds for one whole request, connect to last byte.
    """

    def __init__(self, address: Address, *, timeout: float = DEFAULT_QUERY_TIMEOUT):
        self.address = address
        self.timeout = timeout

    # --- operations -----------------------------------------------------------
    def query_jobs(self, conditions: JobQuery, flags: StatusFlag = StatusFlag.NONE,
                   limit: ResultLimit = ResultLimit()) -> Answer:
        """``POST /queryJobs``: ``(error, [(job id or None, JobView or None)])``.

        ``error`` is the ``(code, desc)`` a partial answer came with, else None.
        """
        req = QueryJobsRequest(tuple(tuple(o) for o in conditions), flags, limit)
        return self._call(req, results_in.read_jobs)

    def job_status(self, job_id: JobId, flags: StatusFlag = StatusFlag.NONE) -> JobView:
        """The status of one job: a queryJobs with a single ``jobId`` condition."""
        error, jobs = self.query_jobs(((Condition(Attr.JOBID, Op.EQUAL, job_id),),), flags)
        if error is not None:
            raise ClientError(*error)
        views = [view for _, view in jobs if view is not None]
        if len(views) != 1:
            raise ClientError(ErrorCode.SERVER_RESPONSE,
                              f"{len(views)} job states in the answer for one job")
        return views[0]

    def query_events(self, job_conditions: JobQuery, event_conditions: EventQuery = (),
                     limit: ResultLimit = ResultLimit()) -> Answer:
        """``POST /queryEvents``: ``(error, [events])``."""
        req = QueryEventsRequest(tuple(tuple(o) for o in job_conditions),
                                 tuple(tuple(o) for o in event_conditions), limit)
        return self._call(req, results_in.read_events)

    def job_log(self, job_id: JobId) -> list[Event]:
        """The events of one job below the DEBUG level, in the server's order."""
        error, events = self.query_events(
            ((Condition(Attr.JOBID, Op.EQUAL, job_id),),),
            ((Condition(Attr.LEVEL, Op.LESS, JOB_LOG_LEVEL),),))
        if error is not None:
            raise ClientError(*error)
        return events

    def user_jobs(self, flags: StatusFlag = StatusFlag.NONE, owner: str | None = None,
                  limit: ResultLimit = ResultLimit()) -> Answer:
        """Jobs of ``owner`` (None: the caller, as the server knows it)."""
        return self.query_jobs(((Condition(Attr.OWNER, Op.EQUAL, owner),),), flags, limit)

    # --- the exchange -----------------------------------------------------------
    def _call(self, request, reader: Callable[[bytes], Answer]) -> Answer:
        path, document = write_request(request)
        response = self.exchange(f"POST {path} HTTP/1.1", to_wire(document))
        return interpret(response, reader)

    def exchange(self, request_line: str, body: bytes | None) -> HTTPResponse:
        """Send one request, return its response; ClientError on any failure."""
        deadline = time.monotonic() + self.timeout
        wire = format_request(request_line, API_HEADERS, body)
        try:
            sock = self._connect(deadline)
        except OSError as e:
            raise from_os_error(e, f"connecting to {self.address}") from None
        try:
            with sock:
                _send(sock, wire, deadline)
                return _receive(sock, deadline)
        except TimeoutError:
            raise ClientError(errno.ETIMEDOUT, f"no answer from {self.address} within "
                                               f"{self.timeout:g} s") from None
        except OSError as e:
            raise from_os_error(e, f"talking to {self.address}") from None

    def _connect(self, deadline: float):
        return connect(self.address, deadline)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _send(sock: socket.socket, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        sock.settimeout(_remaining(deadline))
        sent = sock.send(view)
        view = view[sent:]


def _receive(sock: socket.socket, deadline: float) -> HTTPResponse:
    decoder = ResponseDecoder(ANSWER_HTTP_LIMITS)
    while True:
        sock.settimeout(_remaining(deadline))
        data = sock.recv(_RECV)
        if not data:
            raise ClientError(errno.ECONNRESET, "the server closed the connection "
                                                "before it answered")
        try:
            responses = decoder.feed(data)
        except HTTPFramingError as e:
            raise ClientError(ErrorCode.SERVER_RESPONSE, f"bad answer: {e.reason}") from None
        if responses:
            return responses[0]


def interpret(response: HTTPResponse, reader: Callable[[bytes], Answer]) -> Answer:
    """An answer as the legacy client library reads it (see the module docstring):
    ``(error, content)`` for 200 and soft statuses; ClientError otherwise, and for a
    soft status that brings no content."""
    status = response.status
    if status == 405:
        raise ClientError(errno.ENXIO, "the server does not allow this method")
    if status == 415:
        raise ClientError(ErrorCode.ENOTSUP, "the server speaks no compatible protocol version")
    if status == 202:
        raise ClientError(ErrorCode.ACCEPTED_OK, "the server accepted the request")
    if status != 200 and status not in SOFT_STATUSES:
        raise ClientError(ErrorCode.SERVER_RESPONSE,
                          f"HTTP {status} {REASONS.get(status, '')}".rstrip())
    if not response.body:
        raise ClientError(ErrorCode.SERVER_RESPONSE, f"HTTP {status} without a result document")
    try:
        error, content = reader(response.body)
    except RequestError as e:
        raise ClientError(ErrorCode.SERVER_RESPONSE, e.desc) from None
    if error is not None and error[0] == 0:
        error = None
    if status != 200 and error is None:
        raise ClientError(ErrorCode.SERVER_RESPONSE, f"HTTP {status} without an error code")
    return error, content
