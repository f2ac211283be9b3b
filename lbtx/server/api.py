"""The JSON API under ``/api/`` on the query port (docs/api.md), sans I/O.

Messages (client -> server, then the answer)::

    GET  /api/jobs/<jobid>[?flags=children,childhist,childstat,history]  -> {"job": VIEW}
    GET  /api/jobs/<jobid>/events                 -> {"events": [EVENT...]}
    GET  /api/user-jobs                           -> {"jobs": [JOBID...]}
    GET  /api/indexes                             -> {"indexes": [[COLUMN...]...]}
    GET  /api/whoami                              -> {"identity": ..., "fqans": [...]}
    POST /api/query   {"conditions": [[COND...]...], "flags": [...], "limit": N, "results": R}
                                                  -> {"jobs": [VIEW...]}
    POST /api/events  {"conditions": ..., "event_conditions": ..., "limit": N, "results": R}
                                                  -> {"events": [EVENT...]}

A VIEW is ``{"jobid": ..., "status": STATUS}`` (STATUS as :func:`lbtx.status.to_json`
writes it) with ``children``, ``children_hist``, ``children_states`` and ``history``
when the flags ask for them; an EVENT is the object of
:func:`lbtx.protocols.legacy_query.event_xml.event_json_object`. Errors are
``{"error": <number>, "name": <name>, "message": <text>}`` with an HTTP status;
an answer cut at the limit (``"results": "limited"``) carries the same object
under ``"partial"``.

:class:`JsonApi` answers from the same :class:`IQueryBackend` as the legacy
protocol, so both front ends give the same results; the backend applies the
nesting and index rules, read access and limits.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, unquote

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, maybeDeferred
from twisted.logger import Logger

from lbtx.errors import LBFormatError
from lbtx.jobid import PREFIX, JobId
from lbtx.protocols.legacy_query.errors import ErrorCode, LBError
from lbtx.protocols.legacy_query.event_xml import event_json_object
from lbtx.protocols.legacy_query.http import HTTPRequest, HTTPResponse
from lbtx.protocols.legacy_query.interfaces import IQueryBackend
from lbtx.protocols.legacy_query.messages import QueryResults, ResultLimit, StatusFlag
from lbtx.protocols.legacy_query.negotiation import SERVER_HEADER
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.query.conditions_json import ConditionDocumentError, condition_budget, parse_query
from lbtx.schema import JobState
from lbtx.status import HIST_SIZE, to_json

__all__ = ["JsonApi", "API_PREFIX", "FLAGS", "RESULTS", "is_api_request", "view_json"]

API_PREFIX = "/api/"
REQUEST_TIMEOUT = 120.0  # seconds a backend may take for one request
JSON_HEADERS = ("Cache-Control: no-cache", SERVER_HEADER,
                "Content-Type: application/json; charset=utf-8")

#: ``flags`` names -> status flags
FLAGS = {"children": StatusFlag.CHILDREN, "childhist": StatusFlag.CHILDHIST_THOROUGH,
         "childstat": StatusFlag.CHILDSTAT, "history": StatusFlag.HISTORY}
#: ``results`` names -> queryRes modes
RESULTS = {"none": QueryResults.NONE, "limited": QueryResults.LIMITED, "all": QueryResults.ALL}
_QUERY_KEYS = frozenset({"conditions", "flags", "limit", "results"})
_EVENTS_KEYS = frozenset({"conditions", "event_conditions", "limit", "results"})
_MAX_LIMIT = 2**31 - 1
_STATE_NAMES = tuple(JobState(i).text for i in range(HIST_SIZE))

E = ErrorCode
_STATUS = {E.ENOENT: 404, E.EIDRM: 410, E.EINVAL: 400, E.E2BIG: 400, E.NOINDEX: 400,
           E.XML_PARSE: 400, E.JOBID_FORMAT: 400, E.ENOSYS: 501, E.ETIMEDOUT: 503,
           E.EAGAIN: 503}


class _BadRequest(LBError):
    """A request the API cannot take: ``status`` and a JSON error."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(code, message)
        self.status = status


def is_api_request(request: HTTPRequest) -> bool:
    """Whether a request on the query port is for the JSON API."""
    parts = request.request_line.split(" ")
    path = parts[1].split("?", 1)[0] if len(parts) > 1 else ""
    return path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")


def _json_bytes(doc: Any) -> bytes:
    # ASCII with \u escapes: texts from ULM lines may hold undecodable bytes
    return json.dumps(doc).encode("ascii")


def _error_doc(code: int, message: str) -> dict:
    try:
        name = ErrorCode(code).name
    except ValueError:
        name = str(code)
    return {"error": int(code), "name": name, "message": message}


def _histogram(counts) -> dict[str, int]:
    return {_STATE_NAMES[i]: int(counts[i] if i < len(counts) else 0) for i in range(HIST_SIZE)}


def view_json(job_id, view, flags: StatusFlag) -> dict[str, Any]:
    """A job view as the API writes it."""
    out: dict[str, Any] = {"jobid": str(job_id), "status": to_json(view.status)}
    if flags & StatusFlag.CHILDREN:
        out["children"] = [str(c) for c in view.children or ()]
    if flags & StatusFlag.CHILDHIST_THOROUGH:
        out["children_hist"] = _histogram(view.children_hist or ())
    if flags & StatusFlag.CHILDSTAT:
        out["children_states"] = [to_json(child.status) for child in view.children_states or ()]
    if flags & StatusFlag.HISTORY:
        out["history"] = [event_json_object(ev) for ev in view.history or ()]
    return out


def _empty_on_enoent(key: str):
    """An errback: ``ENOENT`` of a listing (nothing matches) is an empty list."""
    def errback(failure):
        if failure.check(LBError) and failure.value.code == E.ENOENT:
            return {key: []}
        return failure
    return errback


def _flags(names) -> StatusFlag:
    flags = StatusFlag.NONE
    for name in names:
        if name not in FLAGS:
            raise _BadRequest(400, E.EINVAL, f"unknown flag {name[:40]!r}; known: "
                                             + ", ".join(FLAGS))
        flags |= FLAGS[name]
    return flags


class JsonApi:
    """Answers ``/api/`` requests from an :class:`IQueryBackend`.

    ``server`` is ``(host, port)`` of this server, for job ids given by their
    unique part; ``clock`` and ``request_timeout`` bound every backend call.
    """

    log = Logger()
    #: the ``/api/notifications`` endpoints (a NotificationApi), set by the server
    notifications = None

    def __init__(self, backend, *, server: tuple[str, int], clock,
                 request_timeout: float = REQUEST_TIMEOUT):
        if not IQueryBackend.providedBy(backend):
            raise TypeError(f"{backend!r} does not provide IQueryBackend")
        self._backend = backend
        self._server = server
        self._clock = clock
        self._timeout = request_timeout

    def handle(self, request: HTTPRequest, caller) -> Deferred:
        """Fire with the :class:`HTTPResponse` to ``request`` from ``caller``; fail
        only with ``CancelledError`` when the caller cancels."""
        d = maybeDeferred(self._dispatch, request, caller)
        d.addTimeout(self._timeout, self._clock)
        d.addCallback(lambda doc: HTTPResponse(200, JSON_HEADERS, _json_bytes(doc)))
        d.addErrback(self._failed, request, caller)
        return d

    def _failed(self, failure, request: HTTPRequest, caller):
        if failure.check(CancelledError):
            return failure
        if failure.check(_BadRequest):
            status, error = failure.value.status, failure.value
        elif failure.check(LBError):
            error = failure.value
            if error.code == E.EPERM:
                status = 401 if caller is None else 403
            else:
                status = _STATUS.get(error.code, 500)
        elif failure.check(TimeoutError):
            self.log.warn("API request {line!r} took longer than {timeout} s",
                          line=request.request_line[:200], timeout=self._timeout)
            status, error = 503, LBError(E.ETIMEDOUT, "the server took too long to answer")
        else:
            self.log.failure("answering API request {line!r} failed", failure,
                             line=request.request_line[:200])
            status, error = 500, LBError(E.DB_CALL, "internal server error")
        body = _json_bytes(_error_doc(error.code, error.desc or str(error)))
        return HTTPResponse(status, JSON_HEADERS, body)

    # --- routing ----------------------------------------------------------------
    #: fixed paths under /api/ -> (method, handler)
    _ROUTES = {"user-jobs": ("GET", "_user_jobs"), "indexes": ("GET", "_indexes"),
               "whoami": ("GET", "_whoami"), "query": ("POST", "_query"),
               "events": ("POST", "_events")}

    def _dispatch(self, request: HTTPRequest, caller):
        parts = request.request_line.split(" ")
        target = parts[1] if len(parts) > 1 else ""
        path, _, query = target.partition("?")
        rest = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else None
        method = request.method
        if rest is not None and rest.split("/", 1)[0] == "notifications" \
                and self.notifications is not None:  # lbtx.server.notify.api
            return self.notifications.dispatch(request, rest, query, caller)
        if rest in self._ROUTES:
            want, name = self._ROUTES[rest]
            if method != want:
                raise _BadRequest(405, E.ENOSYS, f"{rest} takes {want}, not {method[:10]}")
            return getattr(self, name)(request, query, caller)
        if rest is not None and rest.startswith("jobs/") and len(rest) > len("jobs/"):
            if method != "GET":
                raise _BadRequest(405, E.ENOSYS, f"jobs/ takes GET, not {method[:10]}")
            raw = rest[len("jobs/"):]
            if raw.endswith("/events"):
                return self._job_events(self._job_id(raw[:-len("/events")]), caller)
            return self._job(self._job_id(raw), query, caller)
        raise _BadRequest(404, E.ENOENT, f"no such API resource {path[:80]!r}")

    def _job_id(self, raw: str) -> JobId:
        text = unquote(raw)
        if "://" not in text:
            text = f"{PREFIX}{self._server[0]}:{self._server[1]}/{text}"
        try:
            return JobId.parse(text)
        except LBFormatError:
            raise _BadRequest(400, E.JOBID_FORMAT, f"bad job id {text[:200]!r}") from None

    # --- GET ----------------------------------------------------------------------
    def _job(self, job_id: JobId, query: str, caller):
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query),
                              max_num_fields=20)
        except ValueError:
            raise _BadRequest(400, E.EINVAL, f"bad query string {query[:80]!r}") from None
        unknown = set(params) - {"flags"}
        if unknown:
            raise _BadRequest(400, E.EINVAL, f"unknown parameter(s) {sorted(unknown)!r:.80}")
        names = [n for value in params.get("flags", ()) for n in value.split(",") if n]
        flags = _flags(names)
        d = self._backend.job_status(job_id, flags, caller)
        return d.addCallback(lambda view: {"job": view_json(job_id, view, flags)})

    def _job_events(self, job_id: JobId, caller):
        conditions = ((Condition(Attr.JOBID, Op.EQUAL, job_id),),)
        d = self._backend.query_events(conditions, (), ResultLimit(0, QueryResults.ALL), caller)
        return d.addCallback(lambda answer: {"events": [event_json_object(e)
                                                        for e in answer.events]})

    def _user_jobs(self, request, query, caller):
        d = self._backend.user_jobs(caller)
        d.addCallbacks(lambda ids: {"jobs": [str(j) for j in ids]}, _empty_on_enoent("jobs"))
        return d

    def _indexes(self, request, query, caller):
        d = self._backend.indexed_attributes()
        return d.addCallback(lambda indexes: {"indexes": [
            [{"attr": attr.value, **({"name": name} if name else {})} for attr, name in index]
            for index in indexes]})

    @staticmethod
    def _whoami(request, query, caller):
        """Who the server takes the caller for (None: anonymous)."""
        return {"identity": None if caller is None else str(caller),
                "fqans": list(getattr(caller, "fqans", ()))}

    # --- POST -----------------------------------------------------------------------
    @staticmethod
    def _document(request: HTTPRequest, keys: frozenset) -> dict:
        if not request.body:
            raise _BadRequest(400, E.EINVAL, "the request needs a JSON document")
        try:
            doc = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise _BadRequest(400, E.EINVAL, f"malformed JSON: {str(e)[:120]}") from None
        if not isinstance(doc, dict):
            raise _BadRequest(400, E.EINVAL, "the document is a JSON object")
        unknown = set(doc) - keys
        if unknown:
            raise _BadRequest(400, E.EINVAL, f"unknown key(s) {sorted(unknown)!r:.80}")
        return doc

    @staticmethod
    def _limit(doc: dict) -> ResultLimit:
        limit = doc.get("limit", 0)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= _MAX_LIMIT:
            raise _BadRequest(400, E.EINVAL, "limit is a whole number (0: none)")
        results = doc.get("results", "none")
        if results not in RESULTS:
            raise _BadRequest(400, E.EINVAL, "results is one of " + ", ".join(RESULTS))
        return ResultLimit(limit, RESULTS[results])

    @staticmethod
    def _conditions(doc: dict, key: str, *, events: bool, budget) -> tuple:
        if key not in doc:
            if events:
                return ()
            raise _BadRequest(400, E.EINVAL, "unrestricted queries unsupported")
        try:
            return parse_query(doc[key], events=events, counter=budget)
        except ConditionDocumentError as e:
            code = E.E2BIG if e.too_big else E.EINVAL
            raise _BadRequest(400, code, f"{key}: {e.reason}") from None

    def _query(self, request, query, caller):
        doc = self._document(request, _QUERY_KEYS)
        flags_doc = doc.get("flags", [])
        if not isinstance(flags_doc, list) or not all(isinstance(n, str) for n in flags_doc):
            raise _BadRequest(400, E.EINVAL, "flags is a list of names")
        flags = _flags(flags_doc)
        conditions = self._conditions(doc, "conditions", events=False, budget=condition_budget())
        d = self._backend.query_jobs(conditions, flags, self._limit(doc), caller)
        d.addCallbacks(self._jobs, _empty_on_enoent("jobs"), callbackArgs=(flags,))
        return d

    @staticmethod
    def _jobs(answer, flags: StatusFlag) -> dict:
        out: dict[str, Any] = {"jobs": [view_json(job_id, view, flags)
                                        for job_id, view in answer.jobs]}
        if answer.error is not None:
            out["partial"] = _error_doc(*answer.error)
        return out

    def _events(self, request, query, caller):
        doc = self._document(request, _EVENTS_KEYS)
        budget = condition_budget()
        conditions = self._conditions(doc, "conditions", events=False, budget=budget)
        event_conditions = self._conditions(doc, "event_conditions", events=True, budget=budget)
        d = self._backend.query_events(conditions, event_conditions, self._limit(doc), caller)

        def answered(answer):
            out: dict[str, Any] = {"events": [event_json_object(e) for e in answer.events]}
            if answer.error is not None:
                out["partial"] = _error_doc(*answer.error)
            return out
        d.addCallbacks(answered, _empty_on_enoent("events"))
        return d
